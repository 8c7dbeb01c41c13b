using System.Globalization;
using Distill.Eval.Text;

namespace Distill.Eval.Tests.Text;

public sealed class PythonTextTests
{
    [Fact]
    public void Lower_EveryCodePointPythonLowers_MatchesPython()
    {
        // fixtures/python_lower.json: chr(cp).lower() for every code point that Python 3.11 (Unicode 14) changes.
        using var doc = Fixtures.Load("python_lower.json");
        var mismatches = new List<string>();
        foreach (var pair in doc.RootElement.GetProperty("lower").EnumerateObject())
        {
            var input = char.ConvertFromUtf32(int.Parse(pair.Name, NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            var actual = PythonText.Lower(input);
            if (actual != pair.Value.GetString())
            {
                mismatches.Add(pair.Name);
            }
        }

        Assert.Empty(mismatches);
    }

    [Fact]
    public void Lower_AssignedCodePointsPythonKeeps_StayUnchanged()
    {
        // The reverse direction: every code point assigned in Python's Unicode database that Python does not lower
        // must come back unchanged (code points unassigned there are skipped: .NET may know newer Unicode).
        using var doc = Fixtures.Load("python_lower.json");
        var lowered = doc.RootElement.GetProperty("lower").EnumerateObject()
            .Select(p => int.Parse(p.Name, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToHashSet();
        var unassigned = Ranges(doc, "unassigned");
        var changed = new List<int>();
        for (var cp = 0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF || lowered.Contains(cp) || unassigned.Contains(cp))
            {
                continue;
            }

            var s = char.ConvertFromUtf32(cp);
            if (PythonText.Lower(s) != s)
            {
                changed.Add(cp);
            }
        }

        Assert.Empty(changed);
    }

    [Fact]
    public void IsWordChar_EveryAssignedCodePoint_MatchesPythonReW()
    {
        // fixtures: re.match(r"\w", chr(cp)) for every code point (Python's Unicode \w: isalnum() or '_').
        using var doc = Fixtures.Load("python_lower.json");
        var word = Ranges(doc, "word");
        var unassigned = Ranges(doc, "unassigned");
        var mismatches = new List<string>();
        for (var cp = 0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF || unassigned.Contains(cp))
            {
                continue;
            }

            if (PythonText.IsWordChar(char.ConvertFromUtf32(cp), 0) != word.Contains(cp))
            {
                mismatches.Add(cp.ToString("X4", CultureInfo.InvariantCulture));
            }
        }

        Assert.Empty(mismatches);
    }

    [Fact]
    public void IsSpace_EveryBmpCodePoint_MatchesPythonIsSpace()
    {
        using var doc = Fixtures.Load("python_lower.json");
        var space = Ranges(doc, "space");
        for (var cp = 0; cp <= 0xFFFF; cp++)
        {
            if (cp is < 0xD800 or > 0xDFFF)
            {
                Assert.True(space.Contains(cp) == PythonText.IsSpace((char)cp), $"U+{cp:X4}");
            }
        }
    }

    [Theory]
    // Python: 'ΟΔΟΣ'.lower() == 'οδος' (final sigma), 'ΣΟΦΙΑ'.lower() == 'σοφια', 'Σ'.lower() == 'σ'.
    [InlineData("ΟΔΟΣ", "οδος")]
    [InlineData("ΟΔΟΣ ΣΟΦΙΑ", "οδος σοφια")]
    [InlineData("Σ", "σ")]
    [InlineData("İ", "i\u0307")]
    [InlineData("ASCII Only", "ascii only")]
    public void Lower_SpecialCasing_MatchesPython(string input, string expected) =>
        Assert.Equal(expected, PythonText.Lower(input));

    private static HashSet<int> Ranges(System.Text.Json.JsonDocument doc, string name)
    {
        var set = new HashSet<int>();
        foreach (var range in doc.RootElement.GetProperty(name).EnumerateArray())
        {
            for (var cp = range[0].GetInt32(); cp <= range[1].GetInt32(); cp++)
            {
                set.Add(cp);
            }
        }

        return set;
    }

    [Fact]
    public void Split_InformationSeparatorsAndNbsp_SplitLikePython()
    {
        // Python: 'a\x1cb\xa0c\u3000d  e'.split() == ['a', 'b', 'c', 'd', 'e']; U+200B is not whitespace.
        Assert.Equal(["a", "b", "c", "d", "e\u200bf"], PythonText.Split("a\u001cb\u00a0c\u3000d  e\u200bf "));
    }
}
