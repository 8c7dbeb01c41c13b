using System.Text.Json;
using Distill.Data.Alignment;
using Distill.Data.Tests.Tokenization;

namespace Distill.Data.Tests.Alignment;

public sealed class MinEditDistanceTests
{
    [Theory]
    [InlineData("", "", 0)]
    [InlineData("abc", "", 3)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("flaw", "lawn", 2)]
    [InlineData("😀a", "a", 1)] // one code point, not two UTF-16 units
    public void Levenshtein_KnownPairs_ReturnsDistance(string a, string b, int expected) =>
        Assert.Equal(expected, MinEditDistance.Levenshtein(a, b));

    [Fact]
    public void MatchTokens_GoldenCases_MatchDskdReference()
    {
        // fixtures/mined_golden.json comes from fixtures/mined_reference.py, which follows DSKD's dtw/dist_fn (numpy).
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "mined_golden.json")));
        var count = 0;
        foreach (var c in doc.RootElement.EnumerateArray())
        {
            var teacher = c.GetProperty("teacher").EnumerateArray().Select(x => x.GetString()!).ToArray();
            var student = c.GetProperty("student").EnumerateArray().Select(x => x.GetString()!).ToArray();
            var expected = c.GetProperty("student_to_teacher").EnumerateArray().Select(x => x.EnumerateArray().Select(y => y.GetInt32()).ToArray()).ToArray();
            var tm = c.GetProperty("teacher_marker").GetString()!;
            var sm = c.GetProperty("student_marker").GetString()!;
            var actual = MinEditDistance.MatchTokens(teacher, student, tm, sm);
            Assert.Equal(expected.Length, actual.Count);
            for (var j = 0; j < expected.Length; j++)
            {
                Assert.Equal(expected[j], actual[j]);
            }

            var teacherStripped = teacher.Select(t => t.Replace(tm, string.Empty, StringComparison.Ordinal)).ToArray();
            var studentStripped = student.Select(s => s.Replace(sm, string.Empty, StringComparison.Ordinal)).ToArray();
            var dtw = MinEditDistance.Dtw(teacherStripped, studentStripped, (a, b) => MinEditDistance.Levenshtein(a, b));
            Assert.Equal(c.GetProperty("cost").GetDouble(), dtw.Cost);
            count++;
        }

        Assert.Equal(10, count);
    }

    [Fact]
    public void Dtw_HandExample_FollowsDiagonalFirst()
    {
        // Cost 0 on equal strings, 1 otherwise. Teacher [a, b], student [a, a, b]:
        // M = [[0, 0, 1], [1, 1, 0]] (trimmed); from (1,2): diag M[0,1]=0, up M[0,2]=1, left M[1,1]=1 → diag to (0,1);
        // then i = 0: only left → (0,0). Student 0 → [0], student 1 → [0], student 2 → [1].
        var result = MinEditDistance.Dtw(["a", "b"], ["a", "a", "b"], (x, y) => x == y ? 0 : 1);
        Assert.Equal(0, result.Cost);
        Assert.Equal([(0, 0), (0, 1), (1, 2)], result.Matches);
        Assert.Equal([0], result.Series2ToSeries1[0]);
        Assert.Equal([0], result.Series2ToSeries1[1]);
        Assert.Equal([1], result.Series2ToSeries1[2]);
    }

    [Fact]
    public void AlignStudentToTeacher_Gpt2VsCl100k_AlignsIdenticalTokens()
    {
        var student = HfTokenizerTests.Cached.Gpt2.Value;
        var teacher = HfTokenizerTests.Cached.Cl100k.Value;
        var map = VocabularyMapTests.Gpt2ToCl100k.Value;
        const string text = "The quick brown fox jumps over the lazy dog 12345 times.";
        var s = student.Encode(text, false).Ids;
        var t = teacher.Encode(text, false).Ids;
        var aligned = MinEditDistance.AlignStudentToTeacher(student, teacher, s, t, map);
        Assert.Equal(s.Count, aligned.Length);
        var studentTokens = student.ConvertIdsToTokens(s);
        var teacherTokens = teacher.ConvertIdsToTokens(t);
        for (var j = 0; j < aligned.Length; j++)
        {
            if (aligned[j] >= 0)
            {
                // Aligned positions are exactly those where the mapped teacher token is the same token.
                Assert.Equal(studentTokens[j], teacherTokens[aligned[j]]);
            }
        }

        // Word tokens are identical in both vocabularies; the numbers split differently (gpt2 "Ġ12345" vs cl100k "Ġ", "123", "45").
        Assert.True(aligned.Count(a => a >= 0) >= 10, string.Join(" ", studentTokens) + " | " + string.Join(" ", teacherTokens));
        Assert.Equal(0, aligned[0]);
    }
}

public sealed class MinEditDistanceRealPairTests
{
    [Theory]
    [InlineData("gpt2", "gpt2")]
    [InlineData("gpt2", "cl100k")]
    [InlineData("cl100k", "o200k")]
    [InlineData("o200k", "gpt2")]
    public void AlignStudentToTeacher_VariedText_AlignedPairsAreConsistent(string studentName, string teacherName)
    {
        var student = HfTokenizerTests.Load(studentName).Hf;
        var teacher = HfTokenizerTests.Load(teacherName).Hf;
        var map = studentName == "gpt2" && teacherName == "cl100k" ? VocabularyMapTests.Gpt2ToCl100k.Value : VocabularyMap.Build(student, teacher);
        var total = 0;
        var alignedCount = 0;
        foreach (var text in HfTokenizerTests.Texts.Where(t => t.Length > 0))
        {
            var s = student.Encode(text, false).Ids;
            var t = teacher.Encode(text, false).Ids;
            var aligned = MinEditDistance.AlignStudentToTeacher(student, teacher, s, t, map);
            for (var j = 0; j < aligned.Length; j++)
            {
                if (aligned[j] >= 0)
                {
                    Assert.Equal(s[j], map.TeacherToStudent(t[aligned[j]]));
                    alignedCount++;
                }
                else
                {
                    // Same tokenizer on both sides: every position aligns to itself.
                    Assert.NotEqual(studentName, teacherName);
                }
            }

            total += aligned.Length;
        }

        // Different vocabularies still agree on most word tokens of this text.
        Assert.True(alignedCount > total / 3, $"{alignedCount}/{total}");
    }
}
