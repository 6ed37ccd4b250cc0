import Synchronization

/// Byte-level BPE as HF tokenizers' `models::bpe` applies it: a word's bytes start as single-byte tokens and
/// pairs are merged lowest rank first (leftmost on a tie) with the same heap and stale-entry rule as
/// `Word::merge_all`, so even vocabularies where two merges build the same token give tokenizers' ids.
final class BytePairModel: Sendable {
    /// Vocabulary id of each byte's single-character token (-1 when the vocabulary lacks it: tokenizers
    /// then drops the byte, as it does for unknown characters without an unk token).
    let byteIds: [Int32]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    /// `ignore_merges`: a word that is itself in the vocabulary is taken whole.
    private let wholeWordIds: [[UInt8]: Int32]?
    private let cache = Mutex<[[UInt8]: [Int32]]>([:])
    private static let cacheCapacity = 50_000
    private static let cachedWordLimit = 256

    init(byteIds: [Int32], merges: [UInt64: UInt64], wholeWordIds: [[UInt8]: Int32]?) {
        self.byteIds = byteIds
        self.merges = merges
        self.wholeWordIds = wholeWordIds
    }

    static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    /// Appends the ids of one pre-tokenized word (its raw bytes) to `out`.
    func encodeWord(_ word: ArraySlice<UInt8>, into out: inout [Int]) {
        if word.isEmpty { return }
        let cacheable = word.count <= Self.cachedWordLimit
        let key = cacheable ? Array(word) : []
        if cacheable, let hit = cache.withLock({ $0[key] }) {
            for id in hit { out.append(Int(id)) }
            return
        }
        let ids = merge(word)
        for id in ids { out.append(Int(id)) }
        if cacheable {
            cache.withLock { c in if c.count < Self.cacheCapacity { c[key] = ids } }
        }
    }

    private struct Symbol {
        var id: Int32
        var prev: Int32
        var next: Int32
        var alive: Bool
    }

    private struct Candidate {
        var rank: UInt32
        var pos: Int32
        var newId: Int32
        @inline(__always) func before(_ o: Candidate) -> Bool { rank != o.rank ? rank < o.rank : pos < o.pos }
    }

    func merge(_ word: ArraySlice<UInt8>) -> [Int32] {
        if let whole = wholeWordIds, let id = whole[ByteLevelAlphabet.encodedText(word)] { return [id] }
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.count)
        for b in word {
            let id = byteIds[Int(b)]
            if id < 0 { continue }
            let index = Int32(symbols.count)
            symbols.append(Symbol(id: id, prev: index - 1, next: index + 1, alive: true))
        }
        if symbols.count < 2 { return symbols.map(\.id) }
        var heap = CandidateHeap()
        for p in 0..<(symbols.count - 1) {
            if let m = merges[Self.pairKey(symbols[p].id, symbols[p + 1].id)] {
                heap.push(Candidate(rank: UInt32(m >> 32), pos: Int32(p), newId: Int32(truncatingIfNeeded: m)))
            }
        }
        let count = Int32(symbols.count)
        while let top = heap.pop() {
            let pos = Int(top.pos)
            guard symbols[pos].alive, symbols[pos].next < count else { continue }
            let nextPos = Int(symbols[pos].next)
            // A stale entry is applied only if the pair now there still builds the same token (tokenizers' rule).
            guard let m = merges[Self.pairKey(symbols[pos].id, symbols[nextPos].id)],
                  Int32(truncatingIfNeeded: m) == top.newId else { continue }
            symbols[pos].id = top.newId
            symbols[pos].next = symbols[nextPos].next
            symbols[nextPos].alive = false
            let after = symbols[nextPos].next
            if after < count { symbols[Int(after)].prev = top.pos }
            let prev = symbols[pos].prev
            if prev >= 0, let pm = merges[Self.pairKey(symbols[Int(prev)].id, top.newId)] {
                heap.push(Candidate(rank: UInt32(pm >> 32), pos: prev, newId: Int32(truncatingIfNeeded: pm)))
            }
            if after < count, let nm = merges[Self.pairKey(top.newId, symbols[Int(after)].id)] {
                heap.push(Candidate(rank: UInt32(nm >> 32), pos: top.pos, newId: Int32(truncatingIfNeeded: nm)))
            }
        }
        var ids: [Int32] = []
        var p: Int32 = 0
        while p < count {
            ids.append(symbols[Int(p)].id)
            p = symbols[Int(p)].next
        }
        return ids
    }

    /// Binary min-heap on (rank, position).
    private struct CandidateHeap {
        var items: [Candidate] = []

        mutating func push(_ c: Candidate) {
            items.append(c)
            var i = items.count - 1
            while i > 0 {
                let parent = (i - 1) / 2
                guard items[i].before(items[parent]) else { break }
                items.swapAt(i, parent)
                i = parent
            }
        }

        mutating func pop() -> Candidate? {
            guard let last = items.popLast() else { return nil }
            guard !items.isEmpty else { return last }
            let top = items[0]
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count && items[l].before(items[best]) { best = l }
                if r < items.count && items[r].before(items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best)
                i = best
            }
            return top
        }
    }
}
