/// Multimodal RoPE positions for a prompt with images, as transformers 5.23 `Qwen3_5Model.get_rope_index`
/// computes them: text runs count up on all three rows; each run of image-pad tokens (one image, pads
/// already expanded) gets t = start + frame, h = start + row, w = start + col over the merged grid, and the
/// text after it continues from start + max(h, w)/merge (= the image's largest position + 1).
///
/// API summary
/// - `Qwen35RopeIndex.positions(inputIDs:imageTokenID:grids:spatialMergeSize:) throws(Qwen35Error) -> [[Int]]`:
///   three rows (t, h, w) of T positions; a run of pads whose length differs from its image's merged
///   token count (or a count of runs differing from the number of images) is an `.input` error.
/// - `Qwen35RopeIndex.mergedTokenCount(grid:spatialMergeSize:)`.
public enum Qwen35RopeIndex {
    public static func mergedTokenCount(grid: (t: Int, h: Int, w: Int), spatialMergeSize m: Int) -> Int {
        grid.t * (grid.h / m) * (grid.w / m)
    }

    public static func positions(inputIDs: [Int], imageTokenID: Int, grids: [(t: Int, h: Int, w: Int)],
                                 spatialMergeSize m: Int) throws(Qwen35Error) -> [[Int]] {
        try checkPadCount(inputIDs: inputIDs, imageTokenID: imageTokenID, grids: grids, spatialMergeSize: m)
        var rows: [[Int]] = [[], [], []]
        var current = 0, i = 0, image = 0
        while i < inputIDs.count {
            if inputIDs[i] != imageTokenID {
                for r in 0..<3 { rows[r].append(current) }
                current += 1
                i += 1
                continue
            }
            var end = i
            while end < inputIDs.count && inputIDs[end] == imageTokenID { end += 1 }
            let g = grids[image]
            let expected = mergedTokenCount(grid: g, spatialMergeSize: m)
            guard end - i == expected else {
                throw .input("image \(image) (grid \(g.t)x\(g.h)x\(g.w)) needs \(expected) consecutive <|image_pad|> ids (id \(imageTokenID)), found a run of \(end - i) at position \(i)")
            }
            let lh = g.h / m, lw = g.w / m
            for t in 0..<g.t {
                for y in 0..<lh {
                    for x in 0..<lw {
                        rows[0].append(current + t); rows[1].append(current + y); rows[2].append(current + x)
                    }
                }
            }
            current += max(g.h, g.w) / m
            image += 1
            i = end
        }
        return rows
    }

    /// The total count check on its own (a clear one-line error before any work is done).
    public static func checkPadCount(inputIDs: [Int], imageTokenID: Int, grids: [(t: Int, h: Int, w: Int)],
                                     spatialMergeSize m: Int) throws(Qwen35Error) {
        let pads = inputIDs.reduce(0) { $0 + ($1 == imageTokenID ? 1 : 0) }
        let expected = grids.reduce(0) { $0 + mergedTokenCount(grid: $1, spatialMergeSize: m) }
        guard pads == expected else {
            let per = grids.map { String(mergedTokenCount(grid: $0, spatialMergeSize: m)) }.joined(separator: "+")
            throw .input("input ids hold \(pads) <|image_pad|> tokens (id \(imageTokenID)) but the \(grids.count) image(s) need \(expected) (\(grids.isEmpty ? "0" : per))")
        }
        var runs = 0, previous = false
        for id in inputIDs {
            let isPad = id == imageTokenID
            if isPad && !previous { runs += 1 }
            previous = isPad
        }
        guard runs == grids.count else {
            throw .input("input ids hold \(runs) runs of <|image_pad|> tokens (id \(imageTokenID)), expected one run per image (\(grids.count))")
        }
    }
}
