import Testing
@testable import TendonTensor

@Suite struct TensorTests {
    @Test func blockLayoutsMatchGGML() {
        // ggml-common.h sizes: sizeof(block_q8_0) 34, block_q4_0 18, block_q4_K 144, block_q5_K 176, block_q6_K 210.
        #expect(DType.q8_0.byteCount(elements: 64) == 68)
        #expect(DType.q4_0.byteCount(elements: 32) == 18)
        #expect(DType.q4_K.byteCount(elements: 512) == 288)
        #expect(DType.q5_K.byteCount(elements: 768) == 528)
        #expect(DType.q6_K.byteCount(elements: 256) == 210)
        #expect(DType.q8_0.byteCount(elements: 33) == nil)
        #expect(DType.bf16.byteCount(elements: 3) == 6)
    }

    @Test func f32TensorsHoldTheirValues() {
        let t = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        #expect(t.elementCount == 6)
        #expect(t.toArray() == [1, 2, 3, 4, 5, 6])
        #expect(Int(bitPattern: t.rawPointer) % 64 == 0)
    }
}
