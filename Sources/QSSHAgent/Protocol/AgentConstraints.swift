/// Constraints on an added key: a lifetime in seconds and/or a confirmation for each use.
public struct AgentConstraints: Sendable, Equatable {
    public var lifetime: UInt32?
    public var confirm: Bool

    public init(lifetime: UInt32? = nil, confirm: Bool = false) {
        self.lifetime = lifetime
        self.confirm = confirm
    }

    public var isEmpty: Bool { lifetime == nil && !confirm }

    func encode(into w: inout AgentWireWriter) {
        if let lifetime {
            w.write(byte: AgentConstraintType.lifetime)
            w.write(uint32: lifetime)
        }
        if confirm { w.write(byte: AgentConstraintType.confirm) }
    }

    /// Reads constraints up to the end of the message; an unknown one (including
    /// OpenSSH's extension constraints, which we do not implement) is an error, so a key is
    /// never added with fewer restrictions than asked for.
    static func decode(from r: inout AgentWireReader) throws(AgentError) -> AgentConstraints {
        var c = AgentConstraints()
        while !r.isAtEnd {
            let type = try r.readByte("constraint type")
            switch type {
            case AgentConstraintType.lifetime:
                guard c.lifetime == nil else { throw .malformed("lifetime constraint given twice") }
                let seconds = try r.readUInt32("lifetime")
                guard seconds > 0 else { throw .malformed("lifetime of 0 seconds") }
                c.lifetime = seconds
            case AgentConstraintType.confirm:
                guard !c.confirm else { throw .malformed("confirm constraint given twice") }
                c.confirm = true
            default:
                throw .malformed("unknown constraint \(type)")
            }
        }
        return c
    }
}
