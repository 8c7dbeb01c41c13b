using System.Globalization;
using System.Text;

namespace Distill.Eval.Text;

/// <summary>
/// The few Python 3 <c>str</c> semantics that the reference metric scripts rely on: <c>str.lower()</c> (full case
/// mapping), <c>str.isspace()</c> / <c>str.split()</c>, and the <c>\w</c> class of <c>re</c> on <c>str</c> patterns.
/// </summary>
/// <remarks>
/// .NET's invariant lower-casing is a simple (one-to-one) mapping; Python applies the full mapping, which differs for
/// U+0130 (İ → "i\u0307") and for capital sigma at the end of a word (Σ → ς). <c>str.split()</c> also splits on the
/// information separators U+001C..U+001F, which <see cref="char.IsWhiteSpace(char)"/> does not.
/// </remarks>
internal static class PythonText
{
    private const char CapitalSigma = '\u03A3';

    /// <summary>Python's <c>s.lower()</c>.</summary>
    public static string Lower(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        StringBuilder? sb = null;
        var index = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            string? replacement = null;
            if (rune.Value == 0x0130)
            {
                replacement = "i\u0307";
            }
            else if (rune.Value == CapitalSigma)
            {
                replacement = IsFinalSigma(text, index) ? "\u03C2" : "\u03C3";
            }
            else
            {
                var lower = Rune.ToLowerInvariant(rune);
                if (lower != rune)
                {
                    replacement = lower.ToString();
                }
            }

            if (replacement is not null && sb is null)
            {
                sb = new StringBuilder(text.Length + 4);
                sb.Append(text, 0, index);
            }

            if (sb is not null)
            {
                if (replacement is not null)
                {
                    sb.Append(replacement);
                }
                else
                {
                    sb.Append(text, index, rune.Utf16SequenceLength);
                }
            }

            index += rune.Utf16SequenceLength;
        }

        return sb?.ToString() ?? text;
    }

    /// <summary>Python's <c>c.isspace()</c> for one UTF-16 element (all Python whitespace is in the BMP).</summary>
    public static bool IsSpace(char c) => c is (>= '\t' and <= '\r') or (>= '\u001C' and <= ' ') or '\u0085' or '\u00A0'
        or '\u1680' or (>= '\u2000' and <= '\u200A') or '\u2028' or '\u2029' or '\u202F' or '\u205F' or '\u3000';

    /// <summary>Python's <c>s.split()</c> (no argument): splits on runs of whitespace, drops empty parts.</summary>
    public static List<string> Split(string text)
    {
        var parts = new List<string>();
        var start = -1;
        for (var i = 0; i <= text.Length; i++)
        {
            var boundary = i == text.Length || IsSpace(text[i]);
            if (boundary)
            {
                if (start >= 0)
                {
                    parts.Add(text[start..i]);
                    start = -1;
                }
            }
            else if (start < 0)
            {
                start = i;
            }
        }

        return parts;
    }

    /// <summary>Whether the code point at <paramref name="index"/> is in Python <c>re</c>'s <c>\w</c> for str patterns (<c>isalnum()</c> or underscore).</summary>
    public static bool IsWordChar(string text, int index)
    {
        var rune = RuneAt(text, index);
        if (rune.Value == '_')
        {
            return true;
        }

        // Python's isalnum(): isalpha() (categories L*) or isnumeric() (numeric type Decimal, Digit or Numeric:
        // categories Nd, Nl, No, plus ideographs with numeric values, which are Lo and so already alphabetic).
        return Rune.GetUnicodeCategory(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => true,
            _ => Rune.GetNumericValue(rune) >= 0,
        };
    }

    // CPython's Final_Sigma context: \p{cased} \p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased}).
    private static bool IsFinalSigma(string text, int index)
    {
        var j = index;
        var precededByCased = false;
        while (j > 0)
        {
            var rune = RuneBefore(text, j);
            j -= rune.Utf16SequenceLength;
            if (IsCaseIgnorable(rune))
            {
                continue;
            }

            precededByCased = IsCased(rune);
            break;
        }

        if (!precededByCased)
        {
            return false;
        }

        var k = index + 1;
        while (k < text.Length)
        {
            var rune = RuneAt(text, k);
            k += rune.Utf16SequenceLength;
            if (IsCaseIgnorable(rune))
            {
                continue;
            }

            return !IsCased(rune);
        }

        return true;
    }

    // The code point starting at index; a lone surrogate reads as U+FFFD (one element long).
    private static Rune RuneAt(string text, int index) =>
        Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out _) == System.Buffers.OperationStatus.Done
            ? rune
            : Rune.ReplacementChar;

    private static Rune RuneBefore(string text, int end) =>
        end >= 2 && char.IsLowSurrogate(text[end - 1]) && char.IsHighSurrogate(text[end - 2])
            ? Rune.GetRuneAt(text, end - 2)
            : new Rune(char.IsSurrogate(text[end - 1]) ? '\uFFFD' : text[end - 1]);

    private static bool IsCased(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter => true,
        _ => Rune.ToLowerInvariant(rune) != rune || Rune.ToUpperInvariant(rune) != rune,
    };

    private static bool IsCaseIgnorable(Rune rune) => rune.Value is '\'' or '.' or ':' or '^' or '`' or 0x00B7 or 0x0387
        or 0x05F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark
            or UnicodeCategory.Format or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;
}
