using Distill.Eval.Text;

namespace Distill.Eval.Tests.Text;

public sealed class PorterStemmerTests
{
    [Fact]
    public void Stem_NltkGoldenWordList_MatchesEveryWord()
    {
        // fixtures/porter_nltk.json: nltk.stem.porter.PorterStemmer() (NLTK_EXTENSIONS) over the tricky words of
        // make_goldens.py plus every word of the GPL-3 and Apache-2.0 texts.
        using var doc = Fixtures.Load("porter_nltk.json");
        Assert.Equal("NLTK_EXTENSIONS", doc.RootElement.GetProperty("mode").GetString());
        var stems = doc.RootElement.GetProperty("stems");
        var mismatches = new List<string>();
        var count = 0;
        foreach (var pair in stems.EnumerateObject())
        {
            count++;
            var actual = PorterStemmer.Instance.Stem(pair.Name);
            if (actual != pair.Value.GetString())
            {
                mismatches.Add($"{pair.Name}: expected {pair.Value.GetString()}, got {actual}");
            }
        }

        Assert.True(count > 1000, $"only {count} words in the golden list");
        Assert.Empty(mismatches);
    }

    [Theory]
    [InlineData(200_001)]
    [InlineData(200_000)]
    public void Stem_DegenerateRunOfY_NoStackOverflow(int length)
    {
        // NLTK recurses once per y; a model's degenerate output can be one huge token. In a run of y's the y at 0 is a
        // consonant and each next y flips, so the y before the last is a consonant iff the length is even: step 1c then
        // turns the final y into i; no other rule has a suffix made of y's (NLTK: 'yyyy' -> 'yyyi', 'yyy' -> 'yyy').
        var word = new string('y', length);
        var expected = length % 2 == 0 ? word[..^1] + "i" : word;
        Assert.Equal(expected, PorterStemmer.Instance.Stem(word));
    }

    [Theory]
    // NLTK_EXTENSIONS departures from the 1980 algorithm (which gives new, dy, ski, proce, di, fli).
    [InlineData("news", "news")]
    [InlineData("dying", "die")]
    [InlineData("skies", "sky")]
    [InlineData("proceed", "proceed")]
    [InlineData("dies", "die")]
    [InlineData("flies", "fli")]
    [InlineData("died", "die")]
    [InlineData("spied", "spi")]
    [InlineData("enjoy", "enjoy")]
    [InlineData("happy", "happi")]
    // Classic Porter examples (paper) that all modes agree on.
    [InlineData("caresses", "caress")]
    [InlineData("relational", "relat")]
    [InlineData("generalizations", "gener")]
    [InlineData("hopping", "hop")]
    [InlineData("filing", "file")]
    // Upper case is lowered first (to_lowercase=True); 1–2 letter words pass through.
    [InlineData("Running", "run")]
    [InlineData("IS", "is")]
    [InlineData("", "")]
    public void Stem_KnownWords_ReturnsNltkStem(string word, string expected) =>
        Assert.Equal(expected, PorterStemmer.Instance.Stem(word));
}
