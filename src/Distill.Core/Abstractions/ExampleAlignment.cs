namespace Distill;

/// <summary>
/// The alignment of one batch row's student tokenisation to the teacher's tokenisation of the same text, computed by the
/// data pipeline (off the training thread) and read by cross-tokenizer objectives. See <see cref="SpanAlignment"/> and
/// <see cref="MinEdAlignment"/>.
/// </summary>
public abstract record ExampleAlignment;

/// <summary>
/// Character-offset span alignment of one row: the finest partition of both token sequences into groups covering the same
/// characters.
/// </summary>
/// <param name="Groups">The groups in example token coordinates, in text order, covering every token of both sides once.</param>
/// <param name="StudentColumnOffset">Batch column of student input position 0 (non-zero under left padding).</param>
/// <param name="TeacherColumnOffset">Batch column of teacher input position 0.</param>
public sealed record SpanAlignment(IReadOnlyList<AlignedGroup> Groups, int StudentColumnOffset, int TeacherColumnOffset) : ExampleAlignment;

/// <summary>A precomputed MinED (minimum edit distance) alignment of one row, as DSKD's <c>min_edit_dis_kld</c> computes it per example.</summary>
/// <param name="StudentToTeacher">
/// For each student scored position j (the j-th position with label ≠ −100, in order), the index k of the teacher scored
/// position it is aligned to (the k-th teacher position with label ≠ −100), or −1 when unaligned (zero or several matches).
/// </param>
public sealed record MinEdAlignment(IReadOnlyList<int> StudentToTeacher) : ExampleAlignment;

/// <summary>How many tokens of each side a <see cref="AlignedGroup"/> holds.</summary>
public enum AlignmentKind
{
    /// <summary>One student token covers exactly the characters of one teacher token.</summary>
    OneToOne,

    /// <summary>One student token covers several teacher tokens.</summary>
    OneToMany,

    /// <summary>Several student tokens cover one teacher token.</summary>
    ManyToOne,

    /// <summary>Several tokens on each side (boundaries cross, e.g. inside a multi-byte character).</summary>
    ManyToMany,

    /// <summary>Tokens of one side with no characters on the other (e.g. a BOS or EOS only one tokenizer adds).</summary>
    Unmatched,
}

/// <summary>
/// A minimal pair of token ranges that cover the same characters: student tokens <c>[StudentStart, StudentEnd)</c> and
/// teacher tokens <c>[TeacherStart, TeacherEnd)</c>.
/// </summary>
/// <param name="StudentStart">First student token index.</param>
/// <param name="StudentEnd">One past the last student token index.</param>
/// <param name="TeacherStart">First teacher token index.</param>
/// <param name="TeacherEnd">One past the last teacher token index.</param>
public readonly record struct AlignedGroup(int StudentStart, int StudentEnd, int TeacherStart, int TeacherEnd)
{
    /// <summary>Gets the number of student tokens.</summary>
    public int StudentCount => StudentEnd - StudentStart;

    /// <summary>Gets the number of teacher tokens.</summary>
    public int TeacherCount => TeacherEnd - TeacherStart;

    /// <summary>Gets the kind of the group.</summary>
    public AlignmentKind Kind => (StudentCount, TeacherCount) switch
    {
        (0, _) or (_, 0) => AlignmentKind.Unmatched,
        (1, 1) => AlignmentKind.OneToOne,
        (1, _) => AlignmentKind.OneToMany,
        (_, 1) => AlignmentKind.ManyToOne,
        _ => AlignmentKind.ManyToMany,
    };
}

