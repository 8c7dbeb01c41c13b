using Distill.Data.Alignment;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Distill.Data;

/// <summary>
/// Examples tokenised for training, by the student's tokenizer and optionally also by the teacher's (cross-tokenizer
/// distillation), with random access by index and collation into <see cref="DistillationBatch"/>.
/// </summary>
/// <remarks>Immutable after creation; safe to read from several threads. Examples whose response was truncated away
/// entirely (no scored position left for the student or the teacher) are dropped at creation and counted in
/// <see cref="SkippedCount"/>.</remarks>
public sealed class TokenizedDataset
{
    private readonly List<TextExample> _examples;
    private readonly List<TokenizedExample> _student;
    private readonly List<TokenizedExample>? _teacher;

    private TokenizedDataset(HfTokenizer student, HfTokenizer? teacher, List<TextExample> examples, List<TokenizedExample> studentTokens, List<TokenizedExample>? teacherTokens, int skipped)
    {
        StudentTokenizer = student;
        TeacherTokenizer = teacher;
        _examples = examples;
        _student = studentTokens;
        _teacher = teacherTokens;
        SkippedCount = skipped;
        StudentVocabSize = student.VocabSize;
        TeacherVocabSize = teacher?.VocabSize;
    }

    /// <summary>
    /// Gets or sets the number of ids the student model embeds; <see cref="Collate"/> rejects a token (or pad) id outside
    /// [0, this), naming the example and position. Defaults to the student tokenizer's <see cref="HfTokenizer.VocabSize"/>;
    /// set it to the model's <c>vocab_size</c> when that is smaller.
    /// </summary>
    public int StudentVocabSize { get; set; }

    /// <summary>Gets or sets the number of ids the teacher model embeds (cross-tokenizer datasets; see <see cref="StudentVocabSize"/>).</summary>
    public int? TeacherVocabSize { get; set; }

    /// <summary>Gets the student's tokenizer.</summary>
    public HfTokenizer StudentTokenizer { get; }

    /// <summary>Gets the teacher's tokenizer, or <see langword="null"/> when teacher and student share the student's.</summary>
    public HfTokenizer? TeacherTokenizer { get; }

    /// <summary>Gets the number of examples.</summary>
    public int Count => _student.Count;

    /// <summary>Gets how many input examples were dropped because no response token survived truncation.</summary>
    public int SkippedCount { get; }

    /// <summary>Gets the source examples (prompt, response, references), in dataset order.</summary>
    public IReadOnlyList<TextExample> Examples => _examples;

    /// <summary>Gets the student tokenisation of each example.</summary>
    public IReadOnlyList<TokenizedExample> StudentExamples => _student;

    /// <summary>Gets the teacher tokenisation of each example, or <see langword="null"/>.</summary>
    public IReadOnlyList<TokenizedExample>? TeacherExamples => _teacher;

    /// <summary>Tokenises <paramref name="examples"/> with the student's tokenizer and, when given, the teacher's.</summary>
    /// <param name="examples">Prompt/response pairs.</param>
    /// <param name="student">The student's tokenizer.</param>
    /// <param name="teacher">The teacher's tokenizer for cross-tokenizer batches; null when they share a vocabulary.</param>
    /// <param name="maxLength">Maximum total tokens per example (DSKD <c>max_length</c>).</param>
    /// <param name="maxPromptLength">Maximum prompt tokens (DSKD <c>max_prompt_length</c>).</param>
    /// <param name="logger">Optional logger for the summary.</param>
    /// <returns>The dataset.</returns>
    public static TokenizedDataset Create(IEnumerable<TextExample> examples, HfTokenizer student, HfTokenizer? teacher, int maxLength = DataDefaults.MaxLength, int maxPromptLength = DataDefaults.MaxPromptLength, ILogger? logger = null) =>
        Create(examples, student, teacher, maxLength, maxPromptLength, SequenceFormat.Dskd, SequenceFormat.Dskd, logger);

    /// <summary>Tokenises <paramref name="examples"/> with explicit BOS/EOS layouts per side (e.g. ULD's <see cref="SequenceFormat.UldStudent"/> / <see cref="SequenceFormat.UldTeacher"/>).</summary>
    /// <param name="examples">Prompt/response pairs.</param>
    /// <param name="student">The student's tokenizer.</param>
    /// <param name="teacher">The teacher's tokenizer, or null.</param>
    /// <param name="maxLength">Maximum total tokens per example.</param>
    /// <param name="maxPromptLength">Maximum prompt tokens.</param>
    /// <param name="studentFormat">The student's layout.</param>
    /// <param name="teacherFormat">The teacher's layout (ignored without a teacher).</param>
    /// <param name="logger">Optional logger for the summary.</param>
    /// <returns>The dataset.</returns>
    public static TokenizedDataset Create(IEnumerable<TextExample> examples, HfTokenizer student, HfTokenizer? teacher, int maxLength, int maxPromptLength, SequenceFormat studentFormat, SequenceFormat teacherFormat, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(examples);
        ArgumentNullException.ThrowIfNull(studentFormat);
        ArgumentNullException.ThrowIfNull(teacherFormat);
        ArgumentNullException.ThrowIfNull(student);
        var kept = new List<TextExample>();
        var studentTokens = new List<TokenizedExample>();
        var teacherTokens = teacher is null ? null : new List<TokenizedExample>();
        var skipped = 0;
        foreach (var example in examples)
        {
            var s = TokenizedExample.Create(student, example, maxLength, maxPromptLength, studentFormat);
            var t = teacher is null ? null : TokenizedExample.Create(teacher, example, maxLength, maxPromptLength, teacherFormat);
            if (s.TargetCount == 0 || t is { TargetCount: 0 })
            {
                skipped++;
                continue;
            }

            kept.Add(example);
            studentTokens.Add(s);
            teacherTokens?.Add(t!);
        }

        Log.DatasetTokenized(logger ?? NullLogger.Instance, kept.Count, skipped);
        return new TokenizedDataset(student, teacher, kept, studentTokens, teacherTokens, skipped);
    }

    /// <summary>Tokenises <paramref name="examples"/> with <see cref="DataOptions.MaxLength"/> and <see cref="DataOptions.MaxPromptLength"/>.</summary>
    /// <param name="examples">Prompt/response pairs.</param>
    /// <param name="student">The student's tokenizer.</param>
    /// <param name="teacher">The teacher's tokenizer for cross-tokenizer batches, or null.</param>
    /// <param name="options">The data options.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The dataset.</returns>
    public static TokenizedDataset Create(IEnumerable<TextExample> examples, HfTokenizer student, HfTokenizer? teacher, DataOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Create(examples, student, teacher, options.MaxLength, options.MaxPromptLength, logger);
    }

    /// <summary>
    /// Builds a training batch from the examples at <paramref name="indices"/>: ids, mask and aligned labels (−100 on
    /// prompt and padding), explicit position ids (0.. on real tokens, 0 on padding), and for cross-tokenizer datasets
    /// the teacher's tensors (padded independently) plus one <see cref="ExampleAlignment"/> per row.
    /// </summary>
    /// <param name="indices">Example indices, one per row.</param>
    /// <param name="paddingSide">Where padding goes.</param>
    /// <param name="padToLength">Pad every row to this many columns (DSKD: max_length − 1); null pads to the longest row.</param>
    /// <returns>The batch (tensors on the CPU; the caller owns them).</returns>
    public DistillationBatch Collate(IReadOnlyList<int> indices, PaddingSide paddingSide = PaddingSide.Right, int? padToLength = null)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (indices.Count == 0)
        {
            throw new ArgumentException("A batch needs at least one example.", nameof(indices));
        }

        foreach (var index in indices)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(index, nameof(indices));
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count, nameof(indices));
        }

        CheckIds(indices, _student, PadId(StudentTokenizer), StudentVocabSize, "student");
        if (_teacher is not null)
        {
            CheckIds(indices, _teacher, PadId(TeacherTokenizer!), TeacherVocabSize ?? TeacherTokenizer!.VocabSize, "teacher");
        }

        using var scope = NewDisposeScope();
        var student = Pad([.. indices.Select(i => _student[i])], PadId(StudentTokenizer), paddingSide, padToLength);
        Tensors? teacher = null;
        if (_teacher is not null)
        {
            teacher = Pad([.. indices.Select(i => _teacher[i])], PadId(TeacherTokenizer!), paddingSide, padToLength);
        }

        return new DistillationBatch
        {
            InputIds = student.InputIds.MoveToOuterDisposeScope(),
            AttentionMask = student.AttentionMask.MoveToOuterDisposeScope(),
            Labels = student.Labels.MoveToOuterDisposeScope(),
            PositionIds = student.PositionIds.MoveToOuterDisposeScope(),
            TeacherInputIds = teacher?.InputIds.MoveToOuterDisposeScope(),
            TeacherAttentionMask = teacher?.AttentionMask.MoveToOuterDisposeScope(),
            TeacherLabels = teacher?.Labels.MoveToOuterDisposeScope(),
            TeacherPositionIds = teacher?.PositionIds.MoveToOuterDisposeScope(),
            Alignment = _teacher is null ? null : [.. indices.Select(i => (object)new ExampleAlignment(_student[i], _teacher[i], paddingSide == PaddingSide.Left ? student.Width - _student[i].InputLength : 0, paddingSide == PaddingSide.Left ? teacher!.Width - _teacher[i].InputLength : 0))],
        };
    }

    /// <summary>Every id of the rows (and the pad id) must be in [0, vocabSize): checked here, naming the example and position,
    /// instead of failing inside the model's embedding lookup.</summary>
    private void CheckIds(IReadOnlyList<int> indices, List<TokenizedExample> rows, long padId, int vocabSize, string side)
    {
        foreach (var index in indices)
        {
            var tokens = rows[index].Tokens;
            for (var t = 0; t < tokens.Count; t++)
            {
                if (tokens[t] < 0 || tokens[t] >= vocabSize)
                {
                    throw new InvalidDataException(
                        $"Example {index}: {side} token id {tokens[t]} at position {t} is outside the vocabulary [0, {vocabSize}) (text starts '{Distill.IO.InputFile.Bound(_examples[index].Prompt, 60)}').");
                }
            }
        }

        if (padId < 0 || padId >= vocabSize)
        {
            throw new InvalidDataException($"The {side} pad id {padId} is outside the vocabulary [0, {vocabSize}).");
        }
    }

    /// <summary>
    /// Builds a left-padded generation batch of the prompts at <paramref name="indices"/> (DSKD pads prompts on the left
    /// with EOS): prompt ids, mask and position ids (<c>cumsum(mask) − 1</c>, 0 on padding).
    /// </summary>
    /// <param name="indices">Example indices.</param>
    /// <param name="useTeacherTokenizer">Whether to use the teacher's tokenisation.</param>
    /// <returns>The batch; <see cref="PromptBatch.References"/> holds each example's references.</returns>
    public PromptBatch CollatePrompts(IReadOnlyList<int> indices, bool useTeacherTokenizer = false)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var source = useTeacherTokenizer ? _teacher ?? throw new InvalidOperationException("This dataset has no teacher tokenisation.") : _student;
        var tokenizer = useTeacherTokenizer ? TeacherTokenizer! : StudentTokenizer;
        var rows = indices.Select(i => source[i].Tokens.Take(source[i].PromptLength).ToArray()).ToList();
        var width = Math.Max(1, rows.Max(r => r.Length));
        var pad = PadId(tokenizer);
        var ids = new long[rows.Count * width];
        var mask = new long[rows.Count * width];
        var positions = new long[rows.Count * width];
        for (var b = 0; b < rows.Count; b++)
        {
            var start = width - rows[b].Length;
            for (var t = 0; t < width; t++)
            {
                var real = t >= start;
                ids[b * width + t] = real ? rows[b][t - start] : pad;
                mask[b * width + t] = real ? 1 : 0;
                positions[b * width + t] = real ? t - start : 0;
            }
        }

        using var scope = NewDisposeScope();
        return new PromptBatch(
            tensor(ids, [rows.Count, width], ScalarType.Int64).MoveToOuterDisposeScope(),
            tensor(mask, [rows.Count, width], ScalarType.Int64).MoveToOuterDisposeScope(),
            tensor(positions, [rows.Count, width], ScalarType.Int64).MoveToOuterDisposeScope(),
            [.. indices.Select(i => _examples[i].References)]);
    }

    /// <summary>The id used for padding: the tokenizer's pad token, else EOS (as DSKD sets pad = eos).</summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <returns>The pad id.</returns>
    public static long PadId(HfTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return tokenizer.PadTokenId ?? tokenizer.EosTokenId ?? throw new InvalidOperationException($"Tokenizer {tokenizer.Source} has neither a pad nor an EOS token.");
    }

    private static Tensors Pad(TokenizedExample[] rows, long padId, PaddingSide side, int? padToLength)
    {
        var longest = rows.Max(r => r.InputLength);
        var width = padToLength ?? longest;
        if (width < longest)
        {
            throw new ArgumentOutOfRangeException(nameof(padToLength), padToLength, $"A row has {longest} input tokens, more than padToLength.");
        }

        width = Math.Max(width, 1);
        var ids = new long[rows.Length * width];
        var mask = new long[rows.Length * width];
        var labels = new long[rows.Length * width];
        var positions = new long[rows.Length * width];
        Array.Fill(ids, padId);
        Array.Fill(labels, DistillationBatch.IgnoreIndex);
        for (var b = 0; b < rows.Length; b++)
        {
            var row = rows[b];
            var n = row.InputLength;
            var start = side == PaddingSide.Left ? width - n : 0;
            var firstLabel = Math.Max(row.PromptLength - 1, 0);
            for (var t = 0; t < n; t++)
            {
                var at = b * width + start + t;
                ids[at] = row.Tokens[t];
                mask[at] = 1;
                positions[at] = t;
                if (t >= firstLabel)
                {
                    labels[at] = row.Tokens[t + 1];
                }
            }
        }

        long[] shape = [rows.Length, width];
        return new Tensors(width, tensor(ids, shape, ScalarType.Int64), tensor(mask, shape, ScalarType.Int64), tensor(labels, shape, ScalarType.Int64), tensor(positions, shape, ScalarType.Int64));
    }

    private sealed record Tensors(int Width, Tensor InputIds, Tensor AttentionMask, Tensor Labels, Tensor PositionIds);
}

/// <summary>A left-padded batch of prompts for generation.</summary>
/// <param name="InputIds">[B, T] int64 prompt ids, left-padded.</param>
/// <param name="AttentionMask">[B, T] int64, 0 on padding.</param>
/// <param name="PositionIds">[B, T] int64, 0.. on real tokens, 0 on padding.</param>
/// <param name="References">The reference responses of each row.</param>
public sealed record PromptBatch(Tensor InputIds, Tensor AttentionMask, Tensor PositionIds, IReadOnlyList<IReadOnlyList<string>> References) : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        InputIds.Dispose();
        AttentionMask.Dispose();
        PositionIds.Dispose();
    }
}
