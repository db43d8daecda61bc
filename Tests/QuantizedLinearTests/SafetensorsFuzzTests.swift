import Foundation
import QuantizedLinear
import Testing

/// Structured fuzzing of the safetensors reader against an oracle (issue 12): random valid files, then
/// mutations of the header length, offsets, shapes (zeros, huge values), dtype strings, names (Unicode
/// forms, BOM, control characters, escapes), duplicate keys and trailing data. The oracle decides from
/// the generated structure whether the file is valid; a valid file must load with every tensor's bytes
/// equal to the bytes generated for it (so a shifted read fails), an invalid one must be a clean
/// ``TensorError``. `QLINEAR_FUZZ_ITERATIONS` sets the number of files (default 600).
@Suite struct SafetensorsFuzzTests {
    static var iterations: Int {
        ProcessInfo.processInfo.environment["QLINEAR_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 600
    }

    static let dtypes: [(name: String, bits: Int)] = SafetensorsDType.allCases.map { ($0.rawValue, $0.bitSize) }
    static let names = ["a", "w.weight", "caf\u{E9}", "cafe\u{301}", "\u{FEFF}a", "\u{FEFF}", "x\u{1}\u{1F}y",
                        "q\"\\/", "\u{1F600}", "\u{0}", "__metadata_", "Å", "A\u{30A}", "\u{212B}"]

    struct Entry {
        var name: String
        var dtype: String
        var shape: [Int]
        var begin: Int
        var end: Int
        var escaped: Bool
    }

    struct Spec {
        var entries: [Entry] = []
        var data: [UInt8] = []
        var padding = 0
        var lengthDelta = 0
        var trailing: [UInt8] = []
        var duplicateField = false

        var header: [UInt8] {
            var parts: [String] = []
            for (index, entry) in entries.enumerated() {
                let dtypeField = "\"dtype\":\(quote(entry.dtype, escaped: false))"
                let fields = [dtypeField] + (duplicateField && index == 0 ? [dtypeField] : [])
                    + ["\"shape\":[\(entry.shape.map(String.init).joined(separator: ","))]",
                       "\"data_offsets\":[\(entry.begin),\(entry.end)]"]
                parts.append(quote(entry.name, escaped: entry.escaped) + ":{" + fields.joined(separator: ",") + "}")
            }
            return Array(("{" + parts.joined(separator: ",") + "}").utf8) + [UInt8](repeating: 0x20, count: padding)
        }

        var bytes: [UInt8] {
            let header = header
            let length = UInt64(header.count + lengthDelta)
            return (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } + header + data + trailing
        }

        func quote(_ text: String, escaped: Bool) -> String {
            var result = "\""
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": result += "\\\""
                case "\\": result += "\\\\"
                case _ where scalar.value < 0x20 || (escaped && scalar.value < 0x10000):
                    result += String(format: "\\u%04x", scalar.value)
                default: result.unicodeScalars.append(scalar)
                }
            }
            return result + "\""
        }

        /// The oracle: whether the official format rules (plus this reader's 2^40 dimension cap and
        /// duplicate-key refusal) accept the file.
        var isValid: Bool {
            guard lengthDelta == 0, trailing.isEmpty, !duplicateField else { return false }
            var seen = Set<[UInt8]>()
            for entry in entries {
                guard seen.insert(Array(entry.name.utf8)).inserted, entry.name != "__metadata__" else { return false }
                guard let bits = SafetensorsFuzzTests.dtypes.first(where: { $0.name == entry.dtype })?.bits,
                      entry.shape.allSatisfy({ (0...(1 << 40)).contains($0) }) else { return false }
                var elements = 1
                for dimension in entry.shape {
                    let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                    guard !overflow else { return false }
                    elements = product
                }
                let (totalBits, overflow) = elements.multipliedReportingOverflow(by: bits)
                guard !overflow, totalBits % 8 == 0, entry.begin >= 0, entry.begin <= entry.end,
                      entry.end - entry.begin == totalBits / 8 else { return false }
            }
            let sorted = entries.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.begin < a.end { return false }
            return (entries.map(\.end).max() ?? 0) == data.count
        }
    }

    static func randomSpec(using generator: inout SeededGenerator) -> Spec {
        var spec = Spec()
        var names = Self.names.shuffled(using: &generator)
        for _ in 0..<Int.random(in: 1...5, using: &generator) {
            let dtype = dtypes.randomElement(using: &generator)!
            let elementsPerByte = dtype.bits < 8 ? (dtype.bits == 4 ? 2 : 4) : 1
            var shape = (0..<Int.random(in: 0...3, using: &generator)).map { _ in Int.random(in: 1...4, using: &generator) }
            if Int.random(in: 0..<8, using: &generator) == 0 { shape = [0, 3] }
            let elements = shape.reduce(1, *)
            shape = elements % elementsPerByte == 0 ? shape : shape + [elementsPerByte]
            let bytes = shape.reduce(1, *) * dtype.bits / 8
            let begin = spec.data.count + (Int.random(in: 0..<6, using: &generator) == 0 ? 2 : 0)   // gaps are allowed
            spec.data += [UInt8](repeating: 0, count: begin - spec.data.count)
            spec.data += (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
            spec.entries.append(Entry(name: names.popLast() ?? "n\(spec.entries.count)", dtype: dtype.name,
                                      shape: shape, begin: begin, end: spec.data.count,
                                      escaped: Bool.random(using: &generator)))
        }
        spec.entries.shuffle(using: &generator)
        spec.padding = Int.random(in: 0...12, using: &generator)
        return spec
    }

    static func mutate(_ spec: inout Spec, using generator: inout SeededGenerator) {
        let index = Int.random(in: 0..<spec.entries.count, using: &generator)
        switch Int.random(in: 0..<9, using: &generator) {
        case 0: spec.lengthDelta = [-1, -2, -spec.padding, 1, 3].randomElement(using: &generator)!
        case 1: spec.trailing = [UInt8](repeating: 0x20, count: Int.random(in: 1...9, using: &generator))
        case 2:
            let value = [0, 1, spec.data.count, spec.data.count + 1, -1, 1 << 62].randomElement(using: &generator)!
            if Bool.random(using: &generator) { spec.entries[index].begin = value } else { spec.entries[index].end = value }
        case 3:
            spec.entries[index].shape = [[0, 1 << 40, 1 << 40], [1 << 40, 1 << 40, 0], [0, 1 << 41], [1 << 40, 0],
                                         [0, 1 << 62, 1 << 62], [0], [], [Int(Int32.max)]]
                .randomElement(using: &generator)!
        case 4:
            spec.entries[index].dtype = (dtypes.map(\.name) + ["F8", "f32", "", "F32 ", "I4", "C128", "F8_E4M3FN"])
                .randomElement(using: &generator)!
        case 5:
            if spec.entries.count > 1 { spec.entries[index].name = spec.entries[(index + 1) % spec.entries.count].name }
        case 6:
            let variants = ["caf\u{E9}", "cafe\u{301}", "\u{FEFF}\u{FEFF}", "a\u{0}", "\u{7F}", "__metadata__"]
            spec.entries[index].name = variants.randomElement(using: &generator)!
            spec.entries[index].escaped.toggle()
        case 7: spec.duplicateField = true
        default: spec.padding += Int.random(in: 1...70, using: &generator)
        }
    }

    @Test func structuredMutationsLoadExactlyOrFailCleanly() throws {
        let scratch = try CheckpointScratch()
        var generator = SeededGenerator(seed: 20_261_201)
        var (loaded, rejected) = (0, 0)
        for iteration in 0..<Self.iterations {
            var spec = Self.randomSpec(using: &generator)
            for _ in 0..<Int.random(in: 0...2, using: &generator) { Self.mutate(&spec, using: &generator) }
            let path = scratch.path("fuzz-\(iteration % 4).safetensors")
            let bytes = spec.bytes
            try writeFile(bytes, to: path)
            let valid = spec.isValid
            do {
                let file = try SafetensorsFile(path: path)
                #expect(valid, "iteration \(iteration): an invalid file loaded")
                try Self.checkExact(file, spec: spec, bytes: bytes, iteration: iteration)
                loaded += 1
            } catch let error as TensorError {
                #expect(!valid, "iteration \(iteration): a valid file was refused: \(error)")
                #expect(error.message.contains(path))
                rejected += 1
            }
        }
        #expect(loaded > Self.iterations / 10 && rejected > Self.iterations / 10, "loaded \(loaded), rejected \(rejected)")
    }

    /// Every entry is the generated one, byte for byte: name, dtype, shape and the data at its true place.
    static func checkExact(_ file: SafetensorsFile, spec: Spec, bytes: [UInt8], iteration: Int) throws {
        let dataStart = 8 + spec.header.count
        #expect(file.entries.count == spec.entries.count, "iteration \(iteration)")
        for entry in spec.entries {
            guard let loaded = file.entries.first(where: { Array($0.name.utf8) == Array(entry.name.utf8) }) else {
                Issue.record("iteration \(iteration): `\(entry.name)` missing or renamed")
                continue
            }
            #expect(loaded.dtype.rawValue == entry.dtype && loaded.shape == entry.shape)
            let expected = Array(bytes[dataStart + entry.begin..<dataStart + entry.end])
            #expect(try file.withRawBytes(of: entry.name) { Array($0) } == expected, "iteration \(iteration)")
            if let dtype = loaded.dtype.tensorDType {
                do {
                    let tensor = try file.tensor(entry.name)
                    #expect(tensor.dtype == dtype)
                    #expect(try tensor.withUnsafeContiguousBytes { Array($0) } == expected)
                } catch let error as TensorError {
                    #expect(error.code == .invalidArgument, "iteration \(iteration): \(error)")   // strides overflow
                }
            }
        }
    }
}
