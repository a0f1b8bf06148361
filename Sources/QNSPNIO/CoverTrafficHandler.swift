import NIOCore
import QNSP

/// Shapes what the next handler writes into a ``QNSPHandler`` below it, as a
/// ``CoverTrafficScheduler`` decides (docs/protocol.md §9.6): once the session is established,
/// writes wait in a queue and leave at the scheduler's ticks, and padding cells go with them
/// (`QNSPCommand.coverTraffic`). `constant` sends the same number of cells every tick whether
/// or not there is data (data beyond the budget waits); `random` releases data at jittered
/// ticks and adds front-loaded and random dummy bursts.
///
/// The queue is bounded by the flow control above (SSH channel windows); a raw writer that
/// ignores write promises can grow it in `constant` mode.
public final class CoverTrafficHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private var scheduler: CoverTrafficScheduler
    private var queue: CircularBuffer<(ByteBuffer, EventLoopPromise<Void>?)> = []
    private var queuedCells = 0
    private var payloadPerCell = 0
    private var timer: Scheduled<Void>?
    private var lastTick = NIODeadline.now()
    private var active = false
    /// Cells of padding and of data this handler sent (for measurements).
    public private(set) var paddingCellsSent = 0
    public private(set) var dataCellsSent = 0

    public init(policy: CoverTrafficPolicy) {
        scheduler = CoverTrafficScheduler(policy: policy)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .established(let info)? = event as? QNSPUserEvent, !active, scheduler.policy.mode != .off {
            active = true
            payloadPerCell = max(1, info.cellSize - 19)
            lastTick = .now()
            schedule(in: scheduler.firstTick(), context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        stop(error: ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stop(error: ChannelError.ioOnClosedChannel)
    }

    // MARK: Outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard active else {
            context.write(data, promise: promise)
            return
        }
        let buffer = unwrapOutboundIn(data)
        queuedCells += cells(buffer.readableBytes)
        queue.append((buffer, promise))
    }

    public func flush(context: ChannelHandlerContext) {
        if !active || queue.isEmpty { context.flush() }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // What is queued goes first (an end-of-stream or close must not overtake data).
        release(cells: Int.max, context: context)
        context.flush()
        if mode == .all { stop(error: ChannelError.ioOnClosedChannel) }
        context.close(mode: mode, promise: promise)
    }

    // MARK: Ticks

    private func schedule(in ms: Int64, context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: .milliseconds(ms)) {
            let (handler, context) = bound.value
            handler.tick(context: context)
        }
    }

    private func tick(context: ChannelHandlerContext) {
        guard active else { return }
        let now = NIODeadline.now()
        let since = (now - lastTick).nanoseconds / 1_000_000
        lastTick = now
        let decision = scheduler.tick(queuedCells: queuedCells, sinceLastTickMilliseconds: since)
        release(cells: decision.releaseCells, context: context)
        if decision.paddingCells > 0 {
            paddingCellsSent += decision.paddingCells
            context.triggerUserOutboundEvent(QNSPCommand.coverTraffic(cells: decision.paddingCells), promise: nil)
        }
        context.flush()
        schedule(in: decision.nextTickMilliseconds, context: context)
    }

    private func cells(_ bytes: Int) -> Int { max(1, (bytes + payloadPerCell - 1) / max(1, payloadPerCell)) }

    /// Writes queued data worth at most `cells` cells, splitting a buffer at a cell boundary.
    private func release(cells budget: Int, context: ChannelHandlerContext) {
        var remaining = budget
        while remaining > 0, var (buffer, promise) = queue.first {
            let need = cells(buffer.readableBytes)
            if need <= remaining {
                _ = queue.removeFirst()
                remaining -= need
                queuedCells -= need
                dataCellsSent += need
                context.write(wrapOutboundOut(buffer), promise: promise)
            } else {
                let part = buffer.readSlice(length: remaining * payloadPerCell) ?? ByteBuffer()
                queue[queue.startIndex] = (buffer, promise)
                queuedCells -= remaining
                dataCellsSent += remaining
                remaining = 0
                promise = nil
                context.write(wrapOutboundOut(part), promise: nil)
            }
        }
    }

    private func stop(error: Error) {
        active = false
        timer?.cancel()
        timer = nil
        while let (_, promise) = queue.popFirst() { promise?.fail(error) }
        queuedCells = 0
    }
}

@available(*, unavailable)
extension CoverTrafficHandler: Sendable {}
