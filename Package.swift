// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "qssh",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "QNSPCrypto", targets: ["QNSPCrypto"]),
        .library(name: "QNSP", targets: ["QNSP"]),
        .library(name: "QNSPNIO", targets: ["QNSPNIO"]),
        .library(name: "QMLS", targets: ["QMLS"]),
        .executable(name: "qssh-keygen", targets: ["qssh-keygen"]),
        .executable(name: "qnsp", targets: ["qnsp"]),
        .executable(name: "qssh", targets: ["qssh"]),
        .executable(name: "qsshd", targets: ["qsshd"]),
        .executable(name: "qscp", targets: ["qscp"]),
        .executable(name: "qsftp", targets: ["qsftp"]),
        .executable(name: "qnsp-bench", targets: ["qnsp-bench"]),
        .executable(name: "qmls-bench", targets: ["qmls-bench"]),
        // MARK: Messaging (qpq / qpqd)
        .library(name: "QPQProtocol", targets: ["QPQProtocol"]),
        .executable(name: "qpqd", targets: ["qpqd"]),
        // MARK: Identity: agent
        .executable(name: "qssh-agent", targets: ["qssh-agent"]),
        .executable(name: "qssh-add", targets: ["qssh-add"]),
        .executable(name: "qpq", targets: ["qpq"]),
        .executable(name: "qpq-bench", targets: ["qpq-bench"]),
        // MARK: QUIC carrier
        .library(name: "QNSPQUIC", targets: ["QNSPQUIC"]),
    ],
    dependencies: [
        // Pinned exactly: CQNSPBoringAEAD binds to the BoringSSL copy vendored by this release.
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio-ssh.git", exact: "0.15.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),  // QPQServerPostgres
    ],
    targets: [
        // MARK: C shims
        .target(name: "CQNSPBoringAEAD"),
        .target(name: "CQSSHPosix", linkerSettings: [.linkedLibrary("util", .when(platforms: [.linux]))]),
        // libsodium (Debian: libsodium-dev; Apple: brew install libsodium, see Sources/CSodium/include/CSodium.h)
        .target(name: "CSodium", linkerSettings: [.linkedLibrary("sodium")]),

        // MARK: Crypto layer
        .target(
            name: "QNSPCrypto",
            dependencies: [
                "CQNSPBoringAEAD",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        // MARK: Sans-I/O protocol core (no NIO)
        .target(name: "QNSP", dependencies: ["QNSPCrypto"], swiftSettings: strict),

        // MARK: OPAQUE-3DH (RFC 9807), ristretto255-SHA512 + Argon2id, sans-I/O
        .target(
            name: "QOPAQUE",
            dependencies: ["CSodium", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),

        // MARK: NIO adapters
        .target(
            name: "QNSPNIO",
            dependencies: [
                "QNSP",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // MARK: Session layer: SSH-2 connection protocol inside QNSP
        .target(
            name: "QSSHSession",
            dependencies: [
                "QNSPCrypto", "QNSP", "QNSPNIO", "CQSSHPosix",
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        // MARK: MLS (RFC 9420), sans-I/O
        .target(
            name: "QMLS",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),

        .target(
            name: "QMLSBench",
            dependencies: ["QMLS", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: strict
        ),
        .executableTarget(name: "qmls-bench", dependencies: ["QMLSBench"], swiftSettings: strict),

        // MARK: SFTP v3 (codec, server, client; no NIO)
        .target(name: "QSFTP", swiftSettings: strict),

        // MARK: Tool logic (executables stay thin)
        .target(
            name: "QSSHTools",
            dependencies: [
                "QNSPCrypto", "QNSP", "QNSPNIO", "QSSHSession", "QSFTP", "CQSSHPosix", "QSSHAgent", "QNSPQUIC", "CQSSHPAM",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "qssh", dependencies: ["QSSHTools"], swiftSettings: strict),
        .executableTarget(name: "qsshd", dependencies: ["QSSHTools"], swiftSettings: strict),
        .executableTarget(name: "qssh-keygen", dependencies: ["QSSHTools"], swiftSettings: strict),
        .executableTarget(name: "qnsp", dependencies: ["QSSHTools"], swiftSettings: strict),
        .executableTarget(name: "qscp", dependencies: ["QSSHTools"], swiftSettings: strict),
        .executableTarget(name: "qsftp", dependencies: ["QSSHTools"], swiftSettings: strict),
        .target(
            name: "QNSPBench",
            dependencies: [
                "QNSPCrypto", "QNSP", "QNSPNIO", "QSSHSession", "QOPAQUE", "QNSPQUIC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "qnsp-bench", dependencies: ["QNSPBench", "QSSHTools"], swiftSettings: strict),

        // MARK: Fuzzing (scripts/fuzz.sh builds qssh-fuzz with libFuzzer; without it, it replays files)
        .target(
            name: "QSSHFuzz",
            dependencies: [
                "QNSP", "QNSPCrypto", "QSSHSession", "QSFTP", "QSSHTools", "QSSHAgent",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "qssh-fuzz", dependencies: ["QSSHFuzz"], swiftSettings: strict),

        // MARK: Tests
        .testTarget(name: "QSFTPTests", dependencies: ["QSFTP", "QSSHTestSupport"], swiftSettings: strict),
        .testTarget(name: "QMLSTests", dependencies: ["QMLS", "QSSHTestSupport"], exclude: ["Vectors"], swiftSettings: strict),
        // Shared test support (seeded generators, a tmux terminal); used by the test targets below.
        .target(name: "QSSHTestSupport", dependencies: ["CQSSHPosix"], path: "Tests/QSSHTestSupport", swiftSettings: strict),
        .testTarget(name: "QNSPCryptoTests", dependencies: ["QNSPCrypto", "QSSHTestSupport"], swiftSettings: strict),
        .testTarget(name: "QNSPTests", dependencies: ["QNSP", "QNSPCrypto", "QSSHTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "QOPAQUETests",
            dependencies: ["QOPAQUE", "QSSHTestSupport"],
            resources: [.copy("Resources/vectors.json")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "QNSPNIOTests",
            dependencies: [
                "QNSPNIO", "QNSP", "QNSPCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "QSSHToolsTests",
            dependencies: [
                "QSSHTools", "QSSHSession", "QNSPCrypto", "QNSP", "QNSPNIO", "QNSPBench", "QSFTP", "QSSHFuzz", "QSSHTestSupport",
                .product(name: "NIOSSH", package: "swift-nio-ssh"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            exclude: ["Python"],
            swiftSettings: strict
        ),

        // MARK: Messaging (qpq / qpqd): codec, server core + storage, NIO service, tools
        .target(name: "QPQProtocol", swiftSettings: strict),
        .target(
            name: "QPQServer",
            dependencies: [
                "QPQProtocol", "QOPAQUE", "QNSPCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "QPQServerNIO",
            dependencies: [
                "QPQProtocol", "QPQServer", "QNSP", "QNSPNIO", "QNSPCrypto", "QNSPQUIC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "QPQClient",
            dependencies: [
                "QPQProtocol", "QOPAQUE", "QNSP", "QNSPNIO", "QNSPCrypto", "QMLS", "CSodium", "QNSPQUIC",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "QPQTools",
            dependencies: [
                "QPQProtocol", "QPQServer", "QPQServerNIO", "QPQServerPostgres", "QPQClient", "QOPAQUE", "QNSP", "QNSPNIO", "QNSPCrypto",
                "QSSHTools", "QNSPQUIC",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "qpqd", dependencies: ["QPQTools"], swiftSettings: strict),
        .executableTarget(name: "qpq", dependencies: ["QPQTools"], swiftSettings: strict),
        .executableTarget(name: "qpq-bench", dependencies: ["QPQTools"], swiftSettings: strict),
        .testTarget(
            name: "QPQTests",
            dependencies: [
                "QPQProtocol", "QPQServer", "QPQServerNIO", "QPQClient", "QPQTools", "QOPAQUE", "QNSP", "QNSPNIO", "QNSPCrypto", "QMLS", "QSSHTestSupport", "CQSSHPosix",
                "QNSPQUIC", "QPQServerPostgres", "QNSPBench",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // MARK: Identity: agent (sans-I/O protocol, C shim, tools)
        .target(name: "CQSSHAgentPosix"),
        .target(
            name: "QSSHAgent",
            dependencies: ["QNSP", "QNSPCrypto", "CQSSHAgentPosix", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .executableTarget(name: "qssh-agent", dependencies: ["QSSHTools"], swiftSettings: strict),
        .executableTarget(name: "qssh-add", dependencies: ["QSSHTools"], swiftSettings: strict),
        .testTarget(
            name: "QSSHAgentTests",
            dependencies: ["QSSHAgent", "QSSHTools", "QNSP", "QNSPCrypto", "CQSSHAgentPosix", "QSSHTestSupport"],
            swiftSettings: strict
        ),

        // MARK: QUIC carrier (Debian: libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev)
        .target(
            name: "CNGTCP2",
            linkerSettings: [.linkedLibrary("ngtcp2"), .linkedLibrary("ngtcp2_crypto_gnutls"), .linkedLibrary("gnutls")]
        ),
        .target(
            name: "QNSPQUIC",
            dependencies: [
                "CNGTCP2", "QNSP", "QNSPNIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "QNSPQUICTests",
            dependencies: [
                "QNSPQUIC", "CNGTCP2", "QNSPNIO", "QNSP", "QNSPCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["Python"],
            swiftSettings: strict
        ),

        // MARK: Identity: PAM password login (Debian: libpam0g-dev; the module map links libpam)
        .target(name: "CQSSHPAM"),

        // MARK: Messaging: PostgreSQL store (several qpqd nodes on one database; Debian: postgresql for the tests)
        .target(
            name: "QPQServerPostgres",
            dependencies: [
                "QPQProtocol", "QPQServer",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
    ]
)

// MARK: Client executables: link layout (issue 17, client private memory)
// qssh, qscp and qsftp on Linux link with lld (shipped with the Swift toolchain) so that:
// - relative relocations are packed (DT_RELR, glibc 2.36+): ld.so reads 7 kB of them at start
//   instead of 780 kB of .rela.dyn, which were private pages of every client process;
// - the code a copy runs sits together, in the order of scripts/client.order (written by
//   scripts/client-order.sh): a transfer touches about 4.5 MB of the 7.5 MB .text instead of 6.3 MB
//   (the kernel maps 64 KiB around each first touch, so spread-out hot code costs whole blocks).
// Missing or renamed names in the order file are ignored; they only cost pages.
let clientLinkLayout: [LinkerSetting] = [
    .unsafeFlags(
        [
            "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
            "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/scripts/client.order",
            "-Xlinker", "--no-warn-symbol-ordering",
        ],
        .when(platforms: [.linux])
    )
]
for target in package.targets where ["qssh", "qscp", "qsftp"].contains(target.name) {
    target.linkerSettings = (target.linkerSettings ?? []) + clientLinkLayout
}
// Our modules on the client path emit one section per function in release builds, so that the
// order above moves single functions, not whole files (a dependency's file still moves as one).
// (swiftc skips code generation when a module's IR is unchanged: in an existing .build, remove the
// modules' .o files once for this flag to take effect.)
for target in package.targets where ["QSSHTools", "QSSHSession", "QSSHAgent", "QSFTP", "QNSP", "QNSPNIO", "QNSPCrypto", "QNSPQUIC"].contains(target.name) {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .unsafeFlags(["-Xfrontend", "-function-sections"], .when(platforms: [.linux], configuration: .release))
    ]
}
