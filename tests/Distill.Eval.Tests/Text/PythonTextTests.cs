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

    [Theory]
    // Python: 'ΟΔΟΣ'.lower() == 'οδος' (final sigma), 'ΣΟΦΙΑ'.lower() == 'σοφια', 'Σ'.lower() == 'σ'.
    [InlineData("ΟΔΟΣ", "οδος")]
    [InlineData("ΟΔΟΣ ΣΟΦΙΑ", "οδος σοφια")]
    [InlineData("Σ", "σ")]
    [InlineData("İ", "i\u0307")]
    [InlineData("ASCII Only", "ascii only")]
    public void Lower_SpecialCasing_MatchesPython(string input, string expected) =>
        Assert.Equal(expected, PythonText.Lower(input));

    [Fact]
    public void Split_InformationSeparatorsAndNbsp_SplitLikePython()
    {
        // Python: 'a\x1cb\xa0c\u3000d  e'.split() == ['a', 'b', 'c', 'd', 'e']; U+200B is not whitespace.
        Assert.Equal(["a", "b", "c", "d", "e\u200bf"], PythonText.Split("a\u001cb\u00a0c\u3000d  e\u200bf "));
    }
}
