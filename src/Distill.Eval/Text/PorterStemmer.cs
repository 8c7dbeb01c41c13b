namespace Distill.Eval.Text;

/// <summary>
/// The Porter stemmer exactly as NLTK's <c>nltk.stem.porter.PorterStemmer()</c> in its default
/// <c>NLTK_EXTENSIONS</c> mode, which is what Google's <c>rouge_score</c> uses with <c>use_stemmer=True</c>.
/// </summary>
/// <remarks>
/// <para>
/// Porter, M. "An algorithm for suffix stripping", Program 14.3 (1980), plus Martin Porter's later extensions and NLTK's
/// own: the irregular forms table (sky/skies, dying, lying, tying, news, innings, outings, cannings, howe, proceed,
/// exceed, succeed), the 4-letter <c>-ies</c>/<c>-ied</c> rules (dies → die, spied → spi), the step 1c rule
/// <c>(*c and not c) Y → I</c>, <c>-alli</c> re-entering step 2, <c>-bli → -ble</c>, <c>-fulli → -ful</c>, <c>-logi → -log</c>
/// with the <c>l</c> kept in the stem, and the <c>*o</c> condition accepting a two-letter vowel-consonant stem.
/// Words of one or two characters are returned (lower-cased) unchanged. These differ from the original 1980
/// algorithm: e.g. news → news (not new), dying → die (not dy), skies → sky (not ski), proceed → proceed (not proce).
/// </para>
/// <para>
/// Like NLTK, positions are counted in string elements; NLTK counts code points, so the two agree on any text without
/// surrogate pairs (all text reaching it from the ROUGE tokenizer is ASCII). Stateless and thread-safe.
/// </para>
/// </remarks>
public sealed class PorterStemmer
{
    private static readonly Dictionary<string, string> IrregularForms = new(StringComparer.Ordinal)
    {
        ["sky"] = "sky",
        ["skies"] = "sky",
        ["dying"] = "die",
        ["lying"] = "lie",
        ["tying"] = "tie",
        ["news"] = "news",
        ["innings"] = "inning",
        ["inning"] = "inning",
        ["outings"] = "outing",
        ["outing"] = "outing",
        ["cannings"] = "canning",
        ["canning"] = "canning",
        ["howe"] = "howe",
        ["proceed"] = "proceed",
        ["exceed"] = "exceed",
        ["succeed"] = "succeed",
    };

    /// <summary>Gets a shared instance (the stemmer has no state).</summary>
    public static PorterStemmer Instance { get; } = new();

    /// <summary>Stems one word as NLTK's <c>PorterStemmer().stem(word)</c> does (lower-casing it first, as Python's <c>str.lower</c>).</summary>
    /// <param name="word">The word; any string (an empty string is returned unchanged).</param>
    /// <returns>The stem.</returns>
    public string Stem(string word) => Stem(word, toLowercase: true);

    /// <summary>Stems one word as NLTK's <c>PorterStemmer().stem(word, to_lowercase)</c> does.</summary>
    /// <param name="word">The word.</param>
    /// <param name="toLowercase">Whether to lower-case the word first (Python <c>str.lower</c> semantics).</param>
    /// <returns>The stem.</returns>
    public string Stem(string word, bool toLowercase)
    {
        ArgumentNullException.ThrowIfNull(word);
        var stem = toLowercase ? PythonText.Lower(word) : word;

        // NLTK looks the *original* word up in the irregular table and the length test uses it too.
        if (IrregularForms.ContainsKey(word))
        {
            return IrregularForms[stem];
        }

        if (word.Length <= 2)
        {
            return stem;
        }

        stem = Step1A(stem);
        stem = Step1B(stem);
        stem = Step1C(stem);
        stem = Step2(stem);
        stem = Step3(stem);
        stem = Step4(stem);
        stem = Step5A(stem);
        stem = Step5B(stem);
        return stem;
    }

    private static bool IsVowelLetter(char c) => c is 'a' or 'e' or 'i' or 'o' or 'u';

    // A consonant is a letter other than a, e, i, o, u, and other than y preceded by a consonant. NLTK recurses through
    // runs of y; this walks back over the run instead, so a degenerate token of many y's cannot overflow the stack.
    private static bool IsConsonant(string word, int i)
    {
        var c = word[i];
        if (IsVowelLetter(c))
        {
            return false;
        }

        if (c != 'y')
        {
            return true;
        }

        // word[start..i] is a run of y's. A y at 0 is a consonant; each following y flips the answer.
        var start = i;
        while (start > 0 && word[start - 1] == 'y')
        {
            start--;
        }

        var runLength = i - start; // y's before position i within the run
        var first = start == 0 || !IsConsonant(word, start - 1); // word[start - 1] is not 'y': no further recursion
        return runLength % 2 == 0 ? first : !first;
    }

    // m in [C](VC){m}[V]: the number of "vc" transitions in the consonant/vowel pattern of the stem (one O(n) pass).
    private static int Measure(string stem)
    {
        var m = 0;
        var previousIsConsonant = true;
        for (var i = 0; i < stem.Length; i++)
        {
            var c = stem[i];
            var isConsonant = !IsVowelLetter(c) && (c != 'y' || i == 0 || !previousIsConsonant);
            if (isConsonant && i > 0 && !previousIsConsonant)
            {
                m++;
            }

            previousIsConsonant = isConsonant;
        }

        return m;
    }

    private static bool HasPositiveMeasure(string stem) => Measure(stem) > 0;

    private static bool MeasureGreaterThanOne(string stem) => Measure(stem) > 1;

    private static bool ContainsVowel(string stem)
    {
        var previousIsConsonant = true;
        for (var i = 0; i < stem.Length; i++)
        {
            var c = stem[i];
            previousIsConsonant = !IsVowelLetter(c) && (c != 'y' || i == 0 || !previousIsConsonant);
            if (!previousIsConsonant)
            {
                return true;
            }
        }

        return false;
    }

    // *d: ends with a double consonant.
    private static bool EndsDoubleConsonant(string word) =>
        word.Length >= 2 && word[^1] == word[^2] && IsConsonant(word, word.Length - 1);

    // *o: ends consonant-vowel-consonant with the last not w, x or y; NLTK also accepts a two-letter vowel-consonant word.
    private static bool EndsCvc(string word) =>
        (word.Length >= 3
            && IsConsonant(word, word.Length - 3)
            && !IsConsonant(word, word.Length - 2)
            && IsConsonant(word, word.Length - 1)
            && word[^1] is not ('w' or 'x' or 'y'))
        || (word.Length == 2 && !IsConsonant(word, 0) && IsConsonant(word, 1));

    private static string ReplaceSuffix(string word, string suffix, string replacement) =>
        string.Concat(word.AsSpan(0, word.Length - suffix.Length), replacement);

    /// <summary>Applies the first rule whose suffix matches; if its condition fails, no later rule is tried.</summary>
    private static string ApplyRuleList(string word, ReadOnlySpan<Rule> rules)
    {
        foreach (var rule in rules)
        {
            if (rule.Suffix == DoubleConsonant)
            {
                if (EndsDoubleConsonant(word))
                {
                    var stem = word[..^2];
                    return rule.Condition is null || rule.Condition(stem) ? stem + rule.Replacement : word;
                }

                continue;
            }

            if (word.EndsWith(rule.Suffix, StringComparison.Ordinal))
            {
                var stem = word[..^rule.Suffix.Length];
                return rule.Condition is null || rule.Condition(stem) ? stem + rule.Replacement : word;
            }
        }

        return word;
    }

    private const string DoubleConsonant = "*d";

    private readonly record struct Rule(string Suffix, string Replacement, Func<string, bool>? Condition);

    private static string Step1A(string word)
    {
        // NLTK extension: 'dies' -> 'die' (but 'flies' -> 'fli').
        if (word.Length == 4 && word.EndsWith("ies", StringComparison.Ordinal))
        {
            return ReplaceSuffix(word, "ies", "ie");
        }

        return ApplyRuleList(word, Step1ARules);
    }

    private static string Step1B(string word)
    {
        // NLTK extension: 'died' -> 'die', 'spied' -> 'spi'.
        if (word.EndsWith("ied", StringComparison.Ordinal))
        {
            return ReplaceSuffix(word, "ied", word.Length == 4 ? "ie" : "i");
        }

        if (word.EndsWith("eed", StringComparison.Ordinal))
        {
            var stem = word[..^3];
            return Measure(stem) > 0 ? stem + "ee" : word;
        }

        string? intermediate = null;
        foreach (var suffix in (ReadOnlySpan<string>)["ed", "ing"])
        {
            if (word.EndsWith(suffix, StringComparison.Ordinal))
            {
                var candidate = word[..^suffix.Length];
                if (ContainsVowel(candidate))
                {
                    intermediate = candidate;
                    break;
                }
            }
        }

        if (intermediate is null)
        {
            return word;
        }

        // An empty intermediate stem cannot occur: it contains a vowel.
        var last = intermediate[^1];
        return ApplyRuleList(intermediate, [
            new("at", "ate", null),
            new("bl", "ble", null),
            new("iz", "ize", null),
            new(DoubleConsonant, last.ToString(), _ => last is not ('l' or 's' or 'z')),
            new("", "e", stem => Measure(stem) == 1 && EndsCvc(stem)),
        ]);
    }

    private static string Step1C(string word) => ApplyRuleList(word, Step1CRules);

    private static string Step2(string word)
    {
        // NLTK: apply ALLI -> AL first and, if it fires, run step 2 again on the result.
        if (word.EndsWith("alli", StringComparison.Ordinal) && HasPositiveMeasure(word[..^4]))
        {
            return Step2(ReplaceSuffix(word, "alli", "al"));
        }

        // The 'l' of 'logi' -> 'log' stays with the stem (condition on word[:-3]), so short stems like 'geo', 'theo'
        // qualify. 'logi' is the last rule and no earlier suffix ends in it, so it can be tried on its own.
        if (word.EndsWith("logi", StringComparison.Ordinal))
        {
            return HasPositiveMeasure(word[..^3]) ? word[..^4] + "log" : word;
        }

        return ApplyRuleList(word, Step2Rules);
    }

    private static string Step3(string word) => ApplyRuleList(word, Step3Rules);

    private static string Step4(string word) => ApplyRuleList(word, Step4Rules);

    private static string Step5A(string word)
    {
        // Both rules share the suffix e, so both conditions are tried (unlike ApplyRuleList).
        if (word.EndsWith('e'))
        {
            var stem = word[..^1];
            var m = Measure(stem);
            if (m > 1 || (m == 1 && !EndsCvc(stem)))
            {
                return stem;
            }
        }

        return word;
    }

    // (m > 1 and *d and *L) -> single letter; NLTK measures the word minus one l.
    private static string Step5B(string word) =>
        word.EndsWith("ll", StringComparison.Ordinal) && Measure(word[..^1]) > 1 ? word[..^1] : word;

    private static readonly Rule[] Step1ARules =
    [
        new("sses", "ss", null),
        new("ies", "i", null),
        new("ss", "ss", null),
        new("s", "", null),
    ];

    // NLTK: (*c and not c) Y -> I, i.e. y preceded by a consonant that is not the whole stem.
    private static readonly Rule[] Step1CRules = [new("y", "i", stem => stem.Length > 1 && IsConsonant(stem, stem.Length - 1))];

    private static readonly Rule[] Step2Rules =
    [
        new("ational", "ate", HasPositiveMeasure),
        new("tional", "tion", HasPositiveMeasure),
        new("enci", "ence", HasPositiveMeasure),
        new("anci", "ance", HasPositiveMeasure),
        new("izer", "ize", HasPositiveMeasure),
        new("bli", "ble", HasPositiveMeasure),
        new("alli", "al", HasPositiveMeasure),
        new("entli", "ent", HasPositiveMeasure),
        new("eli", "e", HasPositiveMeasure),
        new("ousli", "ous", HasPositiveMeasure),
        new("ization", "ize", HasPositiveMeasure),
        new("ation", "ate", HasPositiveMeasure),
        new("ator", "ate", HasPositiveMeasure),
        new("alism", "al", HasPositiveMeasure),
        new("iveness", "ive", HasPositiveMeasure),
        new("fulness", "ful", HasPositiveMeasure),
        new("ousness", "ous", HasPositiveMeasure),
        new("aliti", "al", HasPositiveMeasure),
        new("iviti", "ive", HasPositiveMeasure),
        new("biliti", "ble", HasPositiveMeasure),
        new("fulli", "ful", HasPositiveMeasure),
    ];

    private static readonly Rule[] Step3Rules =
    [
        new("icate", "ic", HasPositiveMeasure),
        new("ative", "", HasPositiveMeasure),
        new("alize", "al", HasPositiveMeasure),
        new("iciti", "ic", HasPositiveMeasure),
        new("ical", "ic", HasPositiveMeasure),
        new("ful", "", HasPositiveMeasure),
        new("ness", "", HasPositiveMeasure),
    ];

    private static readonly Rule[] Step4Rules =
    [
        new("al", "", MeasureGreaterThanOne),
        new("ance", "", MeasureGreaterThanOne),
        new("ence", "", MeasureGreaterThanOne),
        new("er", "", MeasureGreaterThanOne),
        new("ic", "", MeasureGreaterThanOne),
        new("able", "", MeasureGreaterThanOne),
        new("ible", "", MeasureGreaterThanOne),
        new("ant", "", MeasureGreaterThanOne),
        new("ement", "", MeasureGreaterThanOne),
        new("ment", "", MeasureGreaterThanOne),
        new("ent", "", MeasureGreaterThanOne),
        new("ion", "", stem => Measure(stem) > 1 && stem.Length > 0 && stem[^1] is 's' or 't'),
        new("ou", "", MeasureGreaterThanOne),
        new("ism", "", MeasureGreaterThanOne),
        new("ate", "", MeasureGreaterThanOne),
        new("iti", "", MeasureGreaterThanOne),
        new("ous", "", MeasureGreaterThanOne),
        new("ive", "", MeasureGreaterThanOne),
        new("ize", "", MeasureGreaterThanOne),
    ];
}
