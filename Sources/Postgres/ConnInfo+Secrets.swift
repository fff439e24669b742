/// Keeps passwords out of the messages we pass on. libpq quotes parts of a
/// conninfo string it cannot parse (a bad percent-encoding, a malformed URI),
/// and those parts can be a password; every connection error goes through
/// `redactingSecrets(of:)` before anyone sees it.
enum ConnInfoSecrets {
    static let mask = "********"

    /// The message with every password of `conninfo` replaced by a mask, and
    /// the userinfo of any URI it quotes masked too.
    static func redact(_ message: String, conninfo: String) -> String {
        var result = message
        for secret in passwords(in: conninfo) where !secret.isEmpty {
            result = result.replacingAll(secret, with: mask)
        }
        return maskingURIPasswords(result)
    }

    /// Passwords a conninfo string or URI may carry, as written (and, for a
    /// URI, percent-decoded where that is possible).
    static func passwords(in conninfo: String) -> [String] {
        var found: [String] = []
        for scheme in ["postgresql://", "postgres://"] where conninfo.hasPrefix(scheme) {
            let rest = conninfo.dropFirst(scheme.count)
            if let at = rest.lastIndex(of: "@"), let colon = rest[..<at].firstIndex(of: ":") {
                let password = String(rest[rest.index(after: colon)..<at])
                found.append(password)
                if let decoded = password.removingPercentEncodingIfValid, decoded != password {
                    found.append(decoded)
                }
            }
            // password=... in the query part
            if let query = rest.firstIndex(of: "?") {
                for pair in rest[rest.index(after: query)...].split(separator: "&") where pair.hasPrefix("password=") {
                    found.append(String(pair.dropFirst("password=".count)))
                }
            }
            return found
        }
        // key = value pairs: the value of every password keyword, quoted or not.
        var text = Substring(conninfo)
        while let range = text.firstRange(of: "password") {
            var cursor = range.upperBound
            text = text[cursor...]
            while cursor < text.endIndex, text[cursor] == " " { cursor = text.index(after: cursor) }
            guard cursor < text.endIndex, text[cursor] == "=" else { continue }
            cursor = text.index(after: cursor)
            while cursor < text.endIndex, text[cursor] == " " { cursor = text.index(after: cursor) }
            var value = ""
            if cursor < text.endIndex, text[cursor] == "'" {
                cursor = text.index(after: cursor)
                while cursor < text.endIndex, text[cursor] != "'" {
                    if text[cursor] == "\\", text.index(after: cursor) < text.endIndex { cursor = text.index(after: cursor) }
                    value.append(text[cursor])
                    cursor = text.index(after: cursor)
                }
            } else {
                while cursor < text.endIndex, text[cursor] != " " {
                    value.append(text[cursor])
                    cursor = text.index(after: cursor)
                }
            }
            found.append(value)
            // An unterminated quote: libpq may quote any piece of the rest.
            found.append(contentsOf: value.split(separator: " ").map(String.init))
            text = text[cursor...]
        }
        return found
    }

    /// Masks `user:password@` in any postgres:// or postgresql:// URI in the text.
    static func maskingURIPasswords(_ text: String) -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.firstRange(of: "://") {
            result += rest[..<start.upperBound]
            rest = rest[start.upperBound...]
            let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == " " || $0 == "\"" || $0 == "?" }) ?? rest.endIndex
            let authority = rest[..<authorityEnd]
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                result += authority[...colon] + mask + authority[at...]
                rest = rest[authorityEnd...]
            }
        }
        return result + rest
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }

    /// Percent-decoded, or nil where an escape is not two hex digits.
    var removingPercentEncodingIfValid: String? {
        var bytes: [UInt8] = []
        var iterator = Array(utf8)[...]
        while let byte = iterator.popFirst() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard iterator.count >= 2, let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16) else {
                return nil
            }
            bytes.append(value)
            iterator = iterator.dropFirst(2)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
