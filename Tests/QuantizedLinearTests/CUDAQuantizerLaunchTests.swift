@testable import QLCUDA
import Testing

/// `quant_rows`' chunks per lane (issue 10): four for plain bfloat16 inputs with two rounds of warps per
/// SM or more, two otherwise, and never fewer than a block's chunks. Runs everywhere (no GPU).
@Suite("CUDA quantizer launch")
struct CUDAQuantizerLaunchTests {
    @Test func fourChunksOnlyForManyPlainBFloat16Rows() {
        let chunks = { (rows: Int, packed: Bool) in
            CUDAQuantizedOps.rowChunks(rows: rows, columns: 3072, ept: 8, lanes: 16, packed: packed,
                                       multiprocessors: 132)
        }
        #expect(chunks(54560, true) == 4)
        #expect(chunks(2816, true) == 4)   // 8448 warps: 64 per SM
        #expect(chunks(2815, true) == 2)
        #expect(chunks(1024, true) == 2)   // M = 1024: 3072 warps, under one round
        #expect(chunks(54560, false) == 2)  // float32, float16, codes, or a gelu / update op
        // B = 1024 bf16: 128 lanes of 8 elements, 4 chunks per block whatever the row count.
        #expect(CUDAQuantizedOps.rowChunks(rows: 1, columns: 1024, ept: 8, lanes: 128, packed: true,
                                           multiprocessors: 132) == 4)
    }
}
