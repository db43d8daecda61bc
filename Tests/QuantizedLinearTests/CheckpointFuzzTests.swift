import Foundation
import QuantizedLinear
import Testing

/// Random corruptions of a valid ComfyUI checkpoint: every result must be a correct load or a clean
/// ``TensorError``, never a crash, a hang, or a load that reads something other than the file's bytes.
@Suite struct CheckpointFuzzTests {
    /// 500 files, or `QLINEAR_FUZZ_ITERATIONS` (the long run, see NOTES.md "Reliability").
    static var iterations: Int {
        ProcessInfo.processInfo.environment["QLINEAR_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 500
    }

    @Test func mutatedFilesLoadCorrectlyOrFailCleanly() throws {
        let scratch = try CheckpointScratch()
        // Even iterations mutate the per-layer form, odd ones the header-declared form.
        let valid = CheckpointFormatTests.handBuiltComfyFile(declaration: .perLayer)
        let validHeaderForm = CheckpointFormatTests.handBuiltComfyFile(declaration: .header)
        var generator = SeededGenerator(seed: 20_261_125)
        var loaded = 0
        var rejected = 0
        for iteration in 0..<Self.iterations {
            var bytes = iteration % 2 == 0 ? valid : validHeaderForm
            let headerEnd = 8 + Int(bytes[0]) + Int(bytes[1]) << 8
            for _ in 0..<Int.random(in: 1...3, using: &generator) {
                Self.mutate(&bytes, headerEnd: headerEnd, using: &generator)
            }
            let path = scratch.path("fuzz-\(iteration).safetensors")
            try writeFile(bytes, to: path)
            do {
                let model = try ComfyCheckpoint(contentsOf: path)
                try Self.checkConsistent(model, path: path)
                loaded += 1
            } catch let error as TensorError {
                #expect(error.message.contains(path), "error does not name the file: \(error)")
                rejected += 1
            }
            try FileManager.default.removeItem(atPath: path)
        }
        // Both outcomes occur: the mutations are neither all harmless nor all fatal.
        #expect(loaded > 10 && rejected > 10, "loaded \(loaded), rejected \(rejected)")
    }

    /// One random corruption: a byte changed in the header, anywhere or in the data, the file truncated,
    /// a byte inserted or removed, or the header length rewritten.
    static func mutate(_ bytes: inout [UInt8], headerEnd: Int, using generator: inout SeededGenerator) {
        guard !bytes.isEmpty else { return }
        switch Int.random(in: 0..<7, using: &generator) {
        case 6:   // a data byte (codes, scales, declarations)
            if headerEnd < bytes.count {
                bytes[Int.random(in: headerEnd..<bytes.count, using: &generator)] = UInt8.random(in: 0...255,
                                                                                               using: &generator)
            }
        case 0:   // a header byte, often a digit or JSON punctuation
            let index = Int.random(in: 8..<max(9, min(headerEnd, bytes.count)), using: &generator)
            if index < bytes.count {
                bytes[index] = Array("0123456789[]{},:\" -.eE".utf8).randomElement(using: &generator)!
            }
        case 1:   // any byte
            bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
        case 2:   // truncation
            bytes.removeLast(Int.random(in: 1...bytes.count, using: &generator))
        case 3:   // insertion
            bytes.insert(UInt8.random(in: 0...255, using: &generator),
                         at: Int.random(in: 0...bytes.count, using: &generator))
        case 4:   // deletion
            bytes.remove(at: Int.random(in: 0..<bytes.count, using: &generator))
        default:  // header length
            if bytes.count >= 8 {
                bytes[Int.random(in: 0..<8, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
        }
    }

    /// Every tensor of a loaded model is readable, and each quantized weight dequantizes to exactly
    /// `q * scale` of the codes and scales the file holds.
    static func checkConsistent(_ model: ComfyCheckpoint, path: String) throws {
        let file = try SafetensorsFile(path: path)
        for name in model.names {
            switch model[name]! {
            case .dense(let tensor):
                _ = try tensor.floats()
            case .quantized(let q):
                let layer = String(name.dropLast(ComfyKeys.weight.count))
                let scales = try file.tensor(layer + ComfyKeys.weightScale).floats()
                let restored = try q.dequantize(to: .float32).floats()
                let columns = q.shape[1]
                if let int8 = q.layout as? BlockWiseINT8Layout {
                    let codes = try file.tensor(name).elements(as: Int8.self)
                    let columnBlocks = (columns + int8.blockColumns - 1) / int8.blockColumns
                    for index in codes.indices {
                        let scale = scales[index / columns / int8.blockRows * columnBlocks
                            + index % columns / int8.blockColumns]
                        #expect(restored[index].bitPattern == (Float(codes[index]) * scale).bitPattern)
                    }
                } else {
                    let codes = try file.tensor(name).elements(as: Float8E4M3FN.self)
                    for index in codes.indices {
                        #expect(restored[index].bitPattern == (codes[index].floatValue * scales[0]).bitPattern)
                    }
                }
            }
        }
    }
}
