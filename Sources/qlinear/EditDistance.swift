/// Levenshtein distance between words, to name the known word a mistyped one was meant to be.
enum EditDistance {
    /// The fewest single-character insertions, deletions and substitutions that turn `a` into `b`.
    static func between(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars)
        let b = Array(b.unicodeScalars)
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// The word of `candidates` closest to `word`, if it is close enough to be a typo of it: at most a
    /// third of the longer word's characters differ (at least 2 allowed), or one is a prefix of the other.
    /// Ties go to the earlier candidate.
    static func nearest(to word: String, in candidates: [String]) -> String? {
        var best: (word: String, distance: Int)?
        for candidate in candidates {
            let distance = between(word, candidate)
            let allowed = max(2, max(word.count, candidate.count) / 3)
            let prefix = !word.isEmpty && (candidate.hasPrefix(word) || word.hasPrefix(candidate))
            guard distance <= allowed || prefix else { continue }
            if best == nil || distance < best!.distance { best = (candidate, distance) }
        }
        return best?.word
    }
}
