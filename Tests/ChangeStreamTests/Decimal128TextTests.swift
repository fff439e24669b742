import Testing
@testable import ChangeStream

@Suite("Decimal128 rule")
struct Decimal128TextTests {
    @Test("one rule for both sinks: 34 significant digits and an exponent Decimal128 can hold")
    func rule() {
        let tiny = "0." + String(repeating: "0", count: 6999) + "1"          // 1e-7000, as numeric prints it
        let small = "0." + String(repeating: "0", count: 6175) + "1"         // 1e-6176, the smallest exponent
        for (text, held) in [
            ("12.50", true), ("-0.001", true), ("NaN", true), ("Infinity", true), ("-Infinity", true),
            (String(repeating: "9", count: 34), true), (String(repeating: "9", count: 35), false),
            ("1" + String(repeating: "0", count: 34), false),   // trailing zeros are the value's scale
            (tiny, false), (small, true), ("1e400", true), ("1E6111", true), ("1E6112", false), ("1e-6177", false),
            ("abc", false), ("", false), ("1.2.3", false),
        ] {
            #expect(Decimal128Text.holds(text.utf8) == held, "\(text.prefix(40))")
            #expect((ValueDecoder.decimal(text) == .decimal(text)) == held || text.isEmpty || text == "abc" || text == "1.2.3")
        }
    }
}
