/// PostgreSQL's array literal, `{1,"a b",NULL,{2,3}}`, as a tree.
public enum ArrayLiteral {
    public indirect enum Node: Equatable, Sendable {
        case null
        case text(String)
        case array([Node])
    }

    public static func parse(_ text: String) -> Node? {
        var characters = Array(text.unicodeScalars)
        // An explicit lower bound, such as [0:1]={1,2}, comes first.
        if characters.first == "[", let equals = characters.firstIndex(of: "=") {
            characters.removeSubrange(0...equals)
        }
        var index = 0
        let node = parseArray(characters, &index)
        return index == characters.count ? node : nil
    }

    private static func parseArray(_ characters: [Unicode.Scalar], _ index: inout Int) -> Node? {
        guard index < characters.count, characters[index] == "{" else { return nil }
        index += 1
        var items: [Node] = []
        if index < characters.count && characters[index] == "}" {
            index += 1
            return .array(items)
        }
        while index < characters.count {
            if characters[index] == "{" {
                guard let nested = parseArray(characters, &index) else { return nil }
                items.append(nested)
            } else if characters[index] == "\"" {
                index += 1
                var value = String.UnicodeScalarView()
                while index < characters.count && characters[index] != "\"" {
                    if characters[index] == "\\" { index += 1 }
                    guard index < characters.count else { return nil }
                    value.append(characters[index])
                    index += 1
                }
                index += 1
                items.append(.text(String(value)))
            } else {
                var value = String.UnicodeScalarView()
                while index < characters.count && characters[index] != "," && characters[index] != "}" {
                    value.append(characters[index])
                    index += 1
                }
                let text = String(value)
                items.append(text == "NULL" ? .null : .text(text))
            }
            guard index < characters.count else { return nil }
            if characters[index] == "," {
                index += 1
            } else if characters[index] == "}" {
                index += 1
                return .array(items)
            } else {
                return nil
            }
        }
        return nil
    }
}
