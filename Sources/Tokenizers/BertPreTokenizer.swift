/// BERT's word splitting (Hugging Face `tokenizers`' `BertPreTokenizer`): whitespace separates words and is
/// dropped; each punctuation scalar (``Unicode/Scalar/isBertPunctuation``) is a word of its own.
///
/// "Hello, world!!" -> ["Hello", ",", "world", "!", "!"]. Runs on the normalised text.
public enum BertPreTokenizer {
    /// The words of `text`.
    public static func words(in text: String) -> [String] {
        words(in: Array(text.unicodeScalars)).map { word in
            var view = String.UnicodeScalarView()
            view.append(contentsOf: word)
            return String(view)
        }
    }

    static func words(in scalars: [Unicode.Scalar]) -> [ArraySlice<Unicode.Scalar>] {
        var words: [ArraySlice<Unicode.Scalar>] = []
        var start = 0
        for (index, scalar) in scalars.enumerated() {
            let isSpace = scalar.isBertWhitespace
            guard isSpace || scalar.isBertPunctuation else { continue }
            if start < index { words.append(scalars[start..<index]) }
            if !isSpace { words.append(scalars[index...index]) }
            start = index + 1
        }
        if start < scalars.count { words.append(scalars[start...]) }
        return words
    }
}
