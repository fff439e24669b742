/// The one rule, for every sink, deciding whether a decimal number written as
/// text is stored as a Decimal128: Decimal128 must hold it exactly, that is
/// with at most 34 significant digits (trailing zeros count: they are the
/// value's scale) and an exponent, for the integer coefficient, within
/// -6176...6111. NaN and the infinities are held too. Anything else stays
/// exact as text. Counting digits alone let 1e-7000 through (7,002
/// characters of `0.000...1`), which Extended JSON readers refuse.
enum Decimal128Text {
    static let maximumDigits = 34
    static let exponents = -6176...6111

    static func holds<Text: Collection>(_ text: Text) -> Bool where Text.Element == UInt8 {
        if text.elementsEqual("NaN".utf8) || text.elementsEqual("Infinity".utf8) || text.elementsEqual("-Infinity".utf8) {
            return true
        }
        var digits = 0
        var fractionDigits = 0
        var inFraction = false
        var inExponent = false
        var exponent = 0
        var exponentSign = 1
        var sawDigit = false
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if inExponent {
                    exponent = min(exponent * 10 + Int(byte - UInt8(ascii: "0")), 100_000)
                } else {
                    sawDigit = true
                    if inFraction { fractionDigits += 1 }
                    if digits > 0 || byte != UInt8(ascii: "0") { digits += 1 }
                }
            case UInt8(ascii: "."):
                guard !inFraction, !inExponent else { return false }
                inFraction = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                guard sawDigit, !inExponent else { return false }
                inExponent = true
            case UInt8(ascii: "-"):
                if inExponent { exponentSign = -1 }
            case UInt8(ascii: "+"):
                continue
            default:
                return false
            }
        }
        guard sawDigit else { return false }
        return max(digits, 1) <= maximumDigits && exponents.contains(exponentSign * exponent - fractionDigits)
    }

    /// The text, when Decimal128 holds it exactly.
    static func exact(_ text: String) -> String? {
        holds(text.utf8) ? text : nil
    }
}
