using Distill.Data.Alignment;
using Distill.Data.Tests.Tokenization;

namespace Distill.Data.Tests.Alignment;

public sealed class VocabularyMapTests
{
    internal static readonly Lazy<VocabularyMap> Gpt2ToCl100k = new(() => VocabularyMap.Build(HfTokenizerTests.Cached.Gpt2.Value, HfTokenizerTests.Cached.Cl100k.Value));

    [Fact]
    public void Build_Gpt2StudentCl100kTeacher_MapsSameBytesToSameToken()
    {
        var student = HfTokenizerTests.Cached.Gpt2.Value;
        var teacher = HfTokenizerTests.Cached.Cl100k.Value;
        var map = Gpt2ToCl100k.Value;
        Assert.Equal(teacher.VocabSize, map.TeacherVocabSize);
        Assert.Equal(student.VocabSize, map.StudentVocabSize);

        // All 256 single-byte tokens exist in both; "Ġthe" and "Hello" are tokens of both vocabularies.
        foreach (var token in new[] { "Ġthe", "Hello", "Ġworld", "!", "Ċ" })
        {
            Assert.Equal(student.TokenToId(token), map.TeacherToStudent(teacher.TokenToId(token)!.Value));
        }

        // Special tokens map by role: cl100k <|endoftext|> 100257 → gpt2 <|endoftext|> 50256; FIM tokens have no counterpart.
        Assert.Equal(50256, map.TeacherToStudent(100257));
        Assert.Equal(-1, map.TeacherToStudent(100258));
        Assert.True(map.MappedTeacherCount > 30000, $"{map.MappedTeacherCount}");

        // Student → teacher is the first teacher id mapping to each student id.
        var theStudent = student.TokenToId("Ġthe")!.Value;
        Assert.Equal(teacher.TokenToId("Ġthe"), map.StudentToTeacher(theStudent));
        for (var s = 0; s < 2000; s++)
        {
            var t = map.StudentToTeacher(s);
            if (t >= 0)
            {
                Assert.Equal(s, map.TeacherToStudent(t));
            }
        }
    }

    [Fact]
    public void Build_ByteLevelTokens_UseTheSameBytesAcrossMarkers()
    {
        // Bundled tokenizer A (bytes) as teacher of B (BPE): every byte token maps to B's byte token with the same byte.
        var map = VocabularyMap.Build(BundledData.TokenizerB(), BundledData.TokenizerA());
        for (var b = 0; b < 256; b++)
        {
            Assert.Equal(b, map.TeacherToStudent(b)); // both vocabularies list the bytes first, in byte order
        }

        Assert.Equal(511, map.TeacherToStudent(256)); // EOS ↔ EOS
        Assert.Equal("Ġ", VocabularyMap.TryTokenBytes(BundledData.TokenizerA(), 32) is { } key && key == " " ? "Ġ" : null);
    }

    [Fact]
    public void SaveLoad_RoundTrip_KeepsEveryEntry()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        var map = VocabularyMap.Build(BundledData.TokenizerA(), BundledData.TokenizerB());
        var path = Path.Combine(folder.Path, "tea2stu_id_mapping.json");
        map.Save(path);
        var loaded = VocabularyMap.Load(path, map.TeacherVocabSize, map.StudentVocabSize);
        Assert.Equal(map.TeacherToStudentArray(), loaded.TeacherToStudentArray());
        Assert.Equal(map.StudentToTeacherArray(), loaded.StudentToTeacherArray());

        // Merged B tokens ("Ġthe"-like multi-byte tokens) have no single-byte counterpart in A.
        Assert.True(map.MappedTeacherCount < map.TeacherVocabSize);
        File.WriteAllText(path, "{\"0\": 99999}");
        var ex = Assert.Throws<InvalidDataException>(() => VocabularyMap.Load(path, map.TeacherVocabSize, map.StudentVocabSize));
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
    }
}

public sealed class CrossMarkerTests
{
    [Fact]
    public void BuildAndMinEd_SentencePieceTeacherGpt2Student_BridgeSpaceMarkers()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        File.WriteAllBytes(Path.Combine(folder.Path, "tokenizer.model"), SentencePieceModelBuilder.Build(TokenizerLoadingTests.TinySentencePiece));
        var teacher = HfTokenizer.FromPretrained(folder.Path);
        var student = HfTokenizerTests.Cached.Gpt2.Value;
        var map = VocabularyMap.Build(student, teacher);

        // "▁world" (id 12) stands for the bytes " world" = GPT-2's "Ġworld"; "h" ↔ "h"; </s> ↔ <|endoftext|> by role (EOS).
        Assert.Equal(student.TokenToId("Ġworld"), map.TeacherToStudent(12));
        Assert.Equal(student.TokenToId("h"), map.TeacherToStudent(teacher.TokenToId("h")!.Value));
        Assert.Equal(50256, map.TeacherToStudent(2));
        Assert.Equal(50256, map.TeacherToStudent(1)); // BOS ↔ BOS: this GPT-2 folder's config names <|endoftext|> as BOS

        // MinED on "hello world": teacher [▁hello, ▁world], student [hello, Ġworld]. Marker-stripped strings are equal, so
        // DTW matches 0↔0 and 1↔1; but "▁hello" maps to "Ġhello", not the student's "hello", so only position 1 aligns.
        var s = student.Encode("hello world", false).Ids;
        var t = teacher.Encode("hello world", false).Ids;
        Assert.Equal([7, 12], t);
        Assert.Equal([-1, 1], MinEditDistance.AlignStudentToTeacher(student, teacher, s, t, map));
    }
}
