using System.Text.Json.Serialization;

namespace Distill.Data.Synthesis;

/// <summary>Why a teacher answer ended.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<SeqKdFinishReason>))]
public enum SeqKdFinishReason
{
    /// <summary>The teacher emitted EOS (<c>"eos"</c>).</summary>
    [JsonStringEnumMemberName("eos")]
    Eos,

    /// <summary>The answer reached <see cref="SeqKdOptions.MaxNewTokens"/> without EOS (<c>"length"</c>).</summary>
    [JsonStringEnumMemberName("length")]
    Length,
}

/// <summary>
/// One row of a SeqKD teacher-answer file. The field names are the official ATKD trainer's (<c>instruction</c> = the
/// prompt text, <c>teacher_output</c>, and the dataset's <c>output</c> for <c>mix_request_gt</c>), so the file is also what
/// that trainer reads as <c>generated_data/…jsonl</c>; the other fields are provenance.
/// </summary>
/// <param name="Index">The source example's position in the prompt dataset (0-based).</param>
/// <param name="Sample">Which of the k answers to this prompt (0-based).</param>
/// <param name="Instruction">The prompt text the teacher continued (the template applied; BOS not included).</param>
/// <param name="TeacherOutput">The teacher's continuation, decoded without special tokens, not stripped.</param>
/// <param name="Output">The dataset's reference response (an <see cref="InstructionExample.Output"/> or <see cref="TextExample.Response"/>).</param>
/// <param name="FinishReason">Whether the answer ended on EOS or at the token limit.</param>
/// <param name="Tokens">The number of generated tokens (the EOS token included).</param>
public sealed record SeqKdRecord(
    [property: JsonPropertyName("index")] int Index,
    [property: JsonPropertyName("sample")] int Sample,
    [property: JsonPropertyName("instruction")] string Instruction,
    [property: JsonPropertyName("teacher_output")] string TeacherOutput,
    [property: JsonPropertyName("output")] string Output,
    [property: JsonPropertyName("finish_reason")] SeqKdFinishReason FinishReason,
    [property: JsonPropertyName("tokens")] int Tokens)
{
    /// <summary>Gets the source example's instruction (instruction datasets only; <see langword="null"/> for text prompts).</summary>
    [JsonPropertyName("source_instruction")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SourceInstruction { get; init; }

    /// <summary>Gets the source example's input (instruction datasets only).</summary>
    [JsonPropertyName("input")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Input { get; init; }

    /// <summary>Gets the source example's task label, if it had one.</summary>
    [JsonPropertyName("task")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Task { get; init; }
}

/// <summary>Counts of a SeqKD run.</summary>
public sealed record SeqKdStatistics
{
    /// <summary>Gets the prompts processed (skipped ones included).</summary>
    [JsonPropertyName("prompts")]
    public int Prompts { get; init; }

    /// <summary>Gets the prompts skipped because they exceed the prompt limit.</summary>
    [JsonPropertyName("overlong_prompts")]
    public int OverlongPrompts { get; init; }

    /// <summary>Gets the answers generated.</summary>
    [JsonPropertyName("generated")]
    public int Generated { get; init; }

    /// <summary>Gets the answers that reached the token limit without EOS (kept or dropped).</summary>
    [JsonPropertyName("truncated")]
    public int Truncated { get; init; }

    /// <summary>Gets the truncated answers left out (<see cref="SeqKdOptions.TruncatedAnswers"/> = Drop).</summary>
    [JsonPropertyName("truncated_dropped")]
    public int TruncatedDropped { get; init; }

    /// <summary>Gets the empty answers (kept or dropped).</summary>
    [JsonPropertyName("empty")]
    public int Empty { get; init; }

    /// <summary>Gets the empty answers left out (<see cref="SeqKdOptions.EmptyAnswers"/> = Drop).</summary>
    [JsonPropertyName("empty_dropped")]
    public int EmptyDropped { get; init; }

    /// <summary>Gets the rows written.</summary>
    [JsonPropertyName("written")]
    public int Written { get; init; }

    /// <summary>Gets the generated tokens of all answers (dropped ones included).</summary>
    [JsonPropertyName("generated_tokens")]
    public long GeneratedTokens { get; init; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Prompts} prompts ({OverlongPrompts} over-long skipped), {Generated} answers, {Written} written; truncated {Truncated} ({TruncatedDropped} dropped), empty {Empty} ({EmptyDropped} dropped), {GeneratedTokens} tokens";

    internal SeqKdStatistics Add(SeqKdStatistics o) => new()
    {
        Prompts = Prompts + o.Prompts,
        OverlongPrompts = OverlongPrompts + o.OverlongPrompts,
        Generated = Generated + o.Generated,
        Truncated = Truncated + o.Truncated,
        TruncatedDropped = TruncatedDropped + o.TruncatedDropped,
        Empty = Empty + o.Empty,
        EmptyDropped = EmptyDropped + o.EmptyDropped,
        Written = Written + o.Written,
        GeneratedTokens = GeneratedTokens + o.GeneratedTokens,
    };
}

/// <summary>The generation settings recorded in a <see cref="SeqKdManifest"/>.</summary>
public sealed record SeqKdGenerationSettings
{
    /// <summary>Gets the token limit per answer.</summary>
    [JsonPropertyName("max_new_tokens")]
    public int MaxNewTokens { get; init; }

    /// <summary>Gets whether answers were sampled.</summary>
    [JsonPropertyName("do_sample")]
    public bool DoSample { get; init; }

    /// <summary>Gets the temperature.</summary>
    [JsonPropertyName("temperature")]
    public double Temperature { get; init; }

    /// <summary>Gets top-k (0 = off).</summary>
    [JsonPropertyName("top_k")]
    public int TopK { get; init; }

    /// <summary>Gets top-p.</summary>
    [JsonPropertyName("top_p")]
    public double TopP { get; init; }

    /// <summary>Gets k, the answers per prompt.</summary>
    [JsonPropertyName("num_samples")]
    public int NumSamples { get; init; }

    /// <summary>Gets the rows decoded together (it decides which random numbers a sampled row draws).</summary>
    [JsonPropertyName("batch_size")]
    public int BatchSize { get; init; }

    /// <summary>Gets the prompts per chunk.</summary>
    [JsonPropertyName("chunk_size")]
    public int ChunkSize { get; init; }

    /// <summary>Gets the seed.</summary>
    [JsonPropertyName("seed")]
    public int Seed { get; init; }

    /// <summary>Gets whether prompts started with BOS.</summary>
    [JsonPropertyName("prepend_bos")]
    public bool PrependBos { get; init; }

    /// <summary>Gets the prompt limit in tokens.</summary>
    [JsonPropertyName("max_prompt_tokens")]
    public int MaxPromptTokens { get; init; }

    /// <summary>Gets whether answers were cut to their first line.</summary>
    [JsonPropertyName("first_line_only")]
    public bool FirstLineOnly { get; init; }

    /// <summary>Gets the EOS id generation stopped on.</summary>
    [JsonPropertyName("eos_token_id")]
    public int EosTokenId { get; init; }

    /// <summary>Gets the policy for truncated answers.</summary>
    [JsonPropertyName("truncated_answers")]
    [JsonConverter(typeof(JsonStringEnumConverter<SeqKdRowAction>))]
    public SeqKdRowAction TruncatedAnswers { get; init; }

    /// <summary>Gets the policy for empty answers.</summary>
    [JsonPropertyName("empty_answers")]
    [JsonConverter(typeof(JsonStringEnumConverter<SeqKdRowAction>))]
    public SeqKdRowAction EmptyAnswers { get; init; }

    /// <summary>Gets the policy for over-long prompts.</summary>
    [JsonPropertyName("overlong_prompts")]
    [JsonConverter(typeof(JsonStringEnumConverter<SeqKdRowAction>))]
    public SeqKdRowAction OverlongPrompts { get; init; }
}

/// <summary>
/// The manifest written next to a SeqKD file (<c>&lt;file&gt;.manifest.json</c>): who generated it, how, from which data,
/// and what came out. It lives beside the JSONL so the JSONL stays exactly the row format the official ATKD trainer reads.
/// </summary>
public sealed record SeqKdManifest
{
    /// <summary>The format tag this version writes and reads.</summary>
    public const string CurrentFormat = "distill-seqkd/1";

    /// <summary>Gets the format tag.</summary>
    [JsonPropertyName("format")]
    public string Format { get; init; } = CurrentFormat;

    /// <summary>Gets the teacher's name (<see cref="SeqKdOptions.TeacherName"/> or its model type).</summary>
    [JsonPropertyName("teacher")]
    public required string Teacher { get; init; }

    /// <summary>Gets a SHA-256 of the teacher's configuration, parameter names and shapes, and a fingerprint of its weights.</summary>
    [JsonPropertyName("teacher_config_hash")]
    public required string TeacherConfigHash { get; init; }

    /// <summary>Gets the teacher tokenizer's hash (<see cref="TeacherCacheHashes.Tokenizer"/>).</summary>
    [JsonPropertyName("tokenizer_hash")]
    public required string TokenizerHash { get; init; }

    /// <summary>Gets the prompt kind: <c>instruction</c> (<see cref="InstructionExample"/>s rendered with <see cref="Template"/>) or <c>text</c> (<see cref="TextExample"/> prompts as given).</summary>
    [JsonPropertyName("source")]
    public required string Source { get; init; }

    /// <summary>Gets the instruction template's name, or <see langword="null"/> for text prompts.</summary>
    [JsonPropertyName("template")]
    public string? Template { get; init; }

    /// <summary>Gets the template's response prefix, removed from <c>teacher_output</c> when rows are read back as instruction examples.</summary>
    [JsonPropertyName("response_prefix")]
    public string ResponsePrefix { get; init; } = string.Empty;

    /// <summary>Gets the generation settings.</summary>
    [JsonPropertyName("generation")]
    public required SeqKdGenerationSettings Generation { get; init; }

    /// <summary>Gets the number of prompts in the source dataset.</summary>
    [JsonPropertyName("prompts")]
    public int Prompts { get; init; }

    /// <summary>Gets a SHA-256 of the source dataset (each prompt text and reference, in order).</summary>
    [JsonPropertyName("dataset_hash")]
    public required string DatasetHash { get; init; }

    /// <summary>Gets the statistics of the run (null while it is in progress).</summary>
    [JsonPropertyName("statistics")]
    public SeqKdStatistics? Statistics { get; init; }

    /// <summary>Gets the number of rows in the JSONL file.</summary>
    [JsonPropertyName("rows")]
    public int Rows { get; init; }

    /// <summary>Gets the SHA-256 of the JSONL file's bytes.</summary>
    [JsonPropertyName("file_sha256")]
    public string? FileSha256 { get; init; }
}
