import Foundation
import PostgresNIO
import QPQServer

/// Where a PostgreSQL database is: parsed from `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`
/// (also `postgresql://`). No TLS: the server is meant to be reached on loopback or a private network.
package struct PostgresLocation: Sendable, Equatable {
    package var host: String
    package var port: Int
    package var user: String
    package var password: String?
    package var database: String

    package init(host: String, port: Int, user: String, password: String?, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// True if `text` names a PostgreSQL database rather than a file.
    package static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses a `postgres://` URL; throws `.internal` with a readable message if it is not one.
    package init(url text: String) throws(QPQServiceError) {
        guard Self.isURL(text), let c = URLComponents(string: text), let host = c.host, !host.isEmpty else {
            throw QPQServiceError(.internal, "not a PostgreSQL URL (postgres://USER@HOST:PORT/DATABASE): \(text)")
        }
        guard let user = c.user, !user.isEmpty else { throw QPQServiceError(.internal, "the PostgreSQL URL names no user: \(text)") }
        let database = String(c.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw QPQServiceError(.internal, "the PostgreSQL URL names no database (postgres://USER@HOST:PORT/DATABASE): \(text)")
        }
        let port = c.port ?? 5432
        guard (1...65535).contains(port) else { throw QPQServiceError(.internal, "the PostgreSQL URL's port is 1-65535: \(text)") }
        self.init(host: host, port: port, user: user, password: c.password, database: database)
    }

    package var configuration: PostgresConnection.Configuration {
        PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
    }
}
