using System.Globalization;
using System.Text;
using System.Text.Json;
using Distill.IO;

namespace Distill.Data.Alignment;

/// <summary>
/// The teacher → student vocabulary map MinED needs (DSKD's <c>tea2stu_id_mapping.json</c>, which DSKD does not ship),
/// and the student → teacher map derived from it.
/// </summary>
/// <remarks>
/// <para>How ours is built (<see cref="Build"/>): every token is reduced to the bytes of text it stands for —
/// byte-level BPE strings through GPT-2's byte alphabet, SentencePiece pieces with <c>▁</c> read as a space and
/// <c>&lt;0xNN&gt;</c> as that byte. A teacher token maps to the student token with exactly the same bytes (the
/// lowest id when several have them): so <c>Ġthe</c> ↔ <c>▁the</c> and partial UTF-8 byte tokens map when the student
/// has the same byte sequence. Special tokens map by role (BOS, EOS, PAD, UNK) and otherwise by identical content.
/// Teacher tokens with no exact counterpart map to −1 (never aligned).</para>
/// <para>Student → teacher: for each student id, the teacher ids mapping to it in increasing id order, of which DSKD
/// keeps only the first (<c>max_align_num = 1</c>); <see cref="StudentToTeacher"/> returns that first id or −1.</para>
/// </remarks>
public sealed class VocabularyMap
{
    private readonly int[] _teacherToStudent;
    private readonly int[] _studentToTeacher;

    private VocabularyMap(int[] teacherToStudent, int studentVocabSize)
    {
        _teacherToStudent = teacherToStudent;
        _studentToTeacher = new int[studentVocabSize];
        Array.Fill(_studentToTeacher, -1);
        for (var t = 0; t < teacherToStudent.Length; t++)
        {
            var s = teacherToStudent[t];
            if (s >= 0 && s < studentVocabSize && _studentToTeacher[s] < 0)
            {
                _studentToTeacher[s] = t;
            }
        }

        MappedTeacherCount = teacherToStudent.Count(s => s >= 0);
    }

    /// <summary>Gets the teacher vocabulary size the map covers.</summary>
    public int TeacherVocabSize => _teacherToStudent.Length;

    /// <summary>Gets the student vocabulary size the map covers.</summary>
    public int StudentVocabSize => _studentToTeacher.Length;

    /// <summary>Gets how many teacher ids have a student counterpart.</summary>
    public int MappedTeacherCount { get; }

    /// <summary>Gets how many student ids have at least one teacher id mapping to them.</summary>
    public int MappedStudentCount => _studentToTeacher.Count(t => t >= 0);

    /// <summary>Builds the map from the two tokenizers (see the class remarks).</summary>
    /// <param name="student">The student tokenizer.</param>
    /// <param name="teacher">The teacher tokenizer.</param>
    /// <returns>The map.</returns>
    public static VocabularyMap Build(HfTokenizer student, HfTokenizer teacher)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        var studentByText = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var id = 0; id < student.VocabSize; id++)
        {
            if (!student.IsSpecial(id) && TryTokenBytes(student, id) is { } key)
            {
                studentByText.TryAdd(key, id);
            }
        }

        var map = new int[teacher.VocabSize];
        Array.Fill(map, -1);
        for (var id = 0; id < teacher.VocabSize; id++)
        {
            if (teacher.IsSpecial(id))
            {
                map[id] = MapSpecial(student, teacher, id);
            }
            else if (TryTokenBytes(teacher, id) is { } key && studentByText.TryGetValue(key, out var s))
            {
                map[id] = s;
            }
        }

        return new VocabularyMap(map, student.VocabSize);
    }

    /// <summary>Reads a DSKD-format <c>tea2stu_id_mapping.json</c>: an object of teacher id (string) → student id.</summary>
    /// <param name="path">The file.</param>
    /// <param name="teacherVocabSize">The teacher vocabulary size (ids absent from the file map to −1).</param>
    /// <param name="studentVocabSize">The student vocabulary size.</param>
    /// <returns>The map.</returns>
    /// <exception cref="InvalidDataException">A key or value is not a valid id.</exception>
    public static VocabularyMap Load(string path, int teacherVocabSize, int studentVocabSize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var map = new int[teacherVocabSize];
        Array.Fill(map, -1);
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var t) || t >= teacherVocabSize)
            {
                throw new InvalidDataException($"{path}: key '{entry.Name}' is not a teacher id below {teacherVocabSize}.");
            }

            if (!entry.Value.TryGetInt32(out var s) || s < -1 || s >= studentVocabSize)
            {
                throw new InvalidDataException($"{path}: value of '{entry.Name}' is not a student id below {studentVocabSize}.");
            }

            map[t] = s;
        }

        return new VocabularyMap(map, studentVocabSize);
    }

    /// <summary>Writes the map as DSKD's <c>tea2stu_id_mapping.json</c> (every teacher id, −1 where unmapped), atomically.</summary>
    /// <param name="path">The file to write.</param>
    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var builder = new StringBuilder("{");
        for (var t = 0; t < _teacherToStudent.Length; t++)
        {
            builder.Append(t == 0 ? "\"" : ", \"").Append(t.ToString(CultureInfo.InvariantCulture)).Append("\": ").Append(_teacherToStudent[t].ToString(CultureInfo.InvariantCulture));
        }

        AtomicFile.WriteAllText(path, builder.Append("}\n").ToString());
    }

    /// <summary>Returns the student id for a teacher id, or −1.</summary>
    /// <param name="teacherId">A teacher token id.</param>
    /// <returns>The student id or −1.</returns>
    public int TeacherToStudent(int teacherId) =>
        (uint)teacherId < (uint)_teacherToStudent.Length ? _teacherToStudent[teacherId] : -1;

    /// <summary>Returns the first teacher id mapping to a student id (DSKD's <c>max_align_num = 1</c>), or −1.</summary>
    /// <param name="studentId">A student token id.</param>
    /// <returns>The teacher id or −1.</returns>
    public int StudentToTeacher(int studentId) =>
        (uint)studentId < (uint)_studentToTeacher.Length ? _studentToTeacher[studentId] : -1;

    /// <summary>Gets the student → teacher ids as an array (−1 = none), e.g. to build a gather index.</summary>
    /// <returns>A copy of the array.</returns>
    public int[] StudentToTeacherArray() => (int[])_studentToTeacher.Clone();

    /// <summary>Gets the teacher → student ids as an array (−1 = none).</summary>
    /// <returns>A copy of the array.</returns>
    public int[] TeacherToStudentArray() => (int[])_teacherToStudent.Clone();

    // The bytes of text a token stands for, as a Latin-1 string key; null for tokens without a text form.
    internal static string? TryTokenBytes(HfTokenizer tokenizer, int id)
    {
        string token;
        try
        {
            token = tokenizer.ConvertIdToToken(id);
        }
        catch (ArgumentOutOfRangeException)
        {
            return null;
        }

        var bytes = new List<byte>(token.Length * 2);
        if (tokenizer.Kind == TokenizerKind.ByteLevelBpe)
        {
            if (!ByteLevelAlphabet.TryDecode(token, bytes))
            {
                return null;
            }
        }
        else if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
        {
            bytes.Add(b);
        }
        else
        {
            bytes.AddRange(Encoding.UTF8.GetBytes(token.Replace('▁', ' ')));
        }

        return bytes.Count == 0 ? null : Encoding.Latin1.GetString([.. bytes]);
    }

    private static int MapSpecial(HfTokenizer student, HfTokenizer teacher, int id)
    {
        if (id == teacher.EosTokenId && student.EosTokenId is int eos)
        {
            return eos;
        }

        if (id == teacher.BosTokenId && student.BosTokenId is int bos)
        {
            return bos;
        }

        if (id == teacher.PadTokenId && student.PadTokenId is int pad)
        {
            return pad;
        }

        if (id == teacher.UnkTokenId && student.UnkTokenId is int unk)
        {
            return unk;
        }

        return student.TokenToId(teacher.ConvertIdToToken(id)) is int same && student.IsSpecial(same) ? same : -1;
    }
}
