namespace Distill.Data.Alignment;

/// <summary>
/// Character-offset span alignment between two tokenisations of the same text: walks both token lists and closes a
/// group whenever both sides end at the same character, giving the finest partition on which the two agree.
/// </summary>
/// <remarks>
/// Tokens must be in text order with non-decreasing spans (as <see cref="HfTokenizer.Encode(string, bool)"/> returns
/// them). Zero-width tokens (BOS/EOS added by a post-processor or appended by batching) pair with a zero-width token of
/// the other side at the same position, otherwise they form <see cref="AlignmentKind.Unmatched"/> groups; so do tokens
/// over text only one side covers (one prompt truncated earlier than the other), and a group that a truncated side cannot
/// close ends with the tokens it has.
/// </remarks>
public static class SpanAligner
{
    /// <summary>Aligns two tokenisations of one text.</summary>
    /// <param name="student">Student token spans.</param>
    /// <param name="teacher">Teacher token spans.</param>
    /// <returns>The groups, in text order, covering every token of both sides exactly once.</returns>
    public static IReadOnlyList<AlignedGroup> Align(IReadOnlyList<TokenSpan> student, IReadOnlyList<TokenSpan> teacher)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        var groups = new List<AlignedGroup>();
        int i = 0, j = 0;
        while (i < student.Count || j < teacher.Count)
        {
            var sZero = i < student.Count && student[i].Length == 0;
            var tZero = j < teacher.Count && teacher[j].Length == 0;
            if (sZero && tZero && student[i].Start == teacher[j].Start)
            {
                groups.Add(new AlignedGroup(i, i + 1, j, j + 1));
                i++;
                j++;
                continue;
            }

            if (sZero || j >= teacher.Count)
            {
                groups.Add(new AlignedGroup(i, i + 1, j, j));
                i++;
                continue;
            }

            if (tZero || i >= student.Count)
            {
                groups.Add(new AlignedGroup(i, i, j, j + 1));
                j++;
                continue;
            }

            if (student[i].Start != teacher[j].Start)
            {
                // Text only one side covers (a prompt truncated at a different token): the earlier token is unmatched.
                if (student[i].Start < teacher[j].Start)
                {
                    groups.Add(new AlignedGroup(i, i + 1, j, j));
                    i++;
                }
                else
                {
                    groups.Add(new AlignedGroup(i, i, j, j + 1));
                    j++;
                }

                continue;
            }

            int gi = i, gj = j;
            var endS = student[i++].End;
            var endT = teacher[j++].End;
            while (true)
            {
                // Tokens holding the other bytes of a character already covered overlap the group: take them too.
                if (endS == endT)
                {
                    if (i < student.Count && student[i].Length > 0 && student[i].Start < endS)
                    {
                        endS = Math.Max(endS, student[i++].End);
                        continue;
                    }

                    if (j < teacher.Count && teacher[j].Length > 0 && teacher[j].Start < endT)
                    {
                        endT = Math.Max(endT, teacher[j++].End);
                        continue;
                    }

                    break;
                }

                // Grow the side that ends first; stop when it has no more text tokens (truncated sequences).
                if (endS < endT)
                {
                    if (i >= student.Count || student[i].Length == 0 || student[i].Start >= endT)
                    {
                        break;
                    }

                    endS = Math.Max(endS, student[i++].End);
                }
                else
                {
                    if (j >= teacher.Count || teacher[j].Length == 0 || teacher[j].Start >= endS)
                    {
                        break;
                    }

                    endT = Math.Max(endT, teacher[j++].End);
                }
            }

            groups.Add(new AlignedGroup(gi, i, gj, j));
        }

        return groups;
    }
}

/// <summary>
/// Both tokenisations of one cross-tokenizer example, with character offsets and where the example sits in a batch; the
/// source of the typed alignments a batch carries (<see cref="ToSpanAlignment"/>, <see cref="ToMinEdAlignment"/>).
/// </summary>
/// <remarks>Input position t of the student example is batch column <c>t + StudentColumnOffset</c> (non-zero under left padding); likewise for the teacher.</remarks>
public sealed class ExampleTokenizations
{
    private IReadOnlyList<AlignedGroup>? _groups;

    /// <summary>Creates the alignment data of one example.</summary>
    /// <param name="student">The student tokenisation.</param>
    /// <param name="teacher">The teacher tokenisation.</param>
    /// <param name="studentColumnOffset">Batch column of student input position 0.</param>
    /// <param name="teacherColumnOffset">Batch column of teacher input position 0.</param>
    public ExampleTokenizations(TokenizedExample student, TokenizedExample teacher, int studentColumnOffset = 0, int teacherColumnOffset = 0)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        Student = student;
        Teacher = teacher;
        StudentColumnOffset = studentColumnOffset;
        TeacherColumnOffset = teacherColumnOffset;
    }

    /// <summary>Gets the student tokenisation (tokens, prompt length, offsets into <see cref="TokenizedExample.Text"/>).</summary>
    public TokenizedExample Student { get; }

    /// <summary>Gets the teacher tokenisation of the same text.</summary>
    public TokenizedExample Teacher { get; }

    /// <summary>Gets the batch column of student input position 0.</summary>
    public int StudentColumnOffset { get; }

    /// <summary>Gets the batch column of teacher input position 0.</summary>
    public int TeacherColumnOffset { get; }

    /// <summary>Gets the span alignment of all tokens (computed on first use).</summary>
    public IReadOnlyList<AlignedGroup> Groups => _groups ??= SpanAligner.Align(Student.Offsets, Teacher.Offsets);

    /// <summary>Gets the typed span alignment a batch carries in <see cref="DistillationBatch.SpanAlignments"/>.</summary>
    /// <returns>The groups and the column offsets.</returns>
    public SpanAlignment ToSpanAlignment() => new(Groups, StudentColumnOffset, TeacherColumnOffset);

    /// <summary>
    /// Gets the typed MinED alignment a batch carries in <see cref="DistillationBatch.MinEdAlignments"/>: for each student
    /// scored position, the index of the teacher scored position it aligns to, or −1 (what <c>min_ed</c> would compute).
    /// </summary>
    /// <param name="studentTokenizer">The student tokenizer.</param>
    /// <param name="teacherTokenizer">The teacher tokenizer.</param>
    /// <param name="map">The teacher → student vocabulary map.</param>
    /// <returns>The alignment.</returns>
    public MinEdAlignment ToMinEdAlignment(HfTokenizer studentTokenizer, HfTokenizer teacherTokenizer, VocabularyMap map)
    {
        var (_, studentIds) = Scored(Student);
        var (_, teacherIds) = Scored(Teacher);
        return new MinEdAlignment(studentIds.Length == 0 || teacherIds.Length == 0
            ? [.. Enumerable.Repeat(-1, studentIds.Length)]
            : MinEditDistance.AlignStudentToTeacher(studentTokenizer, teacherTokenizer, studentIds, teacherIds, map));
    }

    /// <summary>
    /// MinED over the scored positions, as DSKD's <c>min_edit_dis_kld</c> does per example: the student input tokens at
    /// the positions whose label ≠ −100 against the teacher's, aligned by <see cref="MinEditDistance.AlignStudentToTeacher"/>.
    /// </summary>
    /// <param name="studentTokenizer">The student tokenizer.</param>
    /// <param name="teacherTokenizer">The teacher tokenizer.</param>
    /// <param name="map">The teacher → student vocabulary map.</param>
    /// <returns>Batch columns of the student's scored positions and, for each, the teacher batch column it is aligned to or −1.</returns>
    public MinEdContentAlignment AlignScoredPositions(HfTokenizer studentTokenizer, HfTokenizer teacherTokenizer, VocabularyMap map)
    {
        var (studentPositions, studentIds) = Scored(Student);
        var (teacherPositions, teacherIds) = Scored(Teacher);
        var aligned = MinEditDistance.AlignStudentToTeacher(studentTokenizer, teacherTokenizer, studentIds, teacherIds, map);
        return new MinEdContentAlignment(
            [.. studentPositions.Select(p => p + StudentColumnOffset)],
            [.. aligned.Select(k => k < 0 ? -1 : teacherPositions[k] + TeacherColumnOffset)]);
    }

    // Scored input positions t ∈ [max(P − 1, 0), n − 1) and the input ids there.
    private static (int[] Positions, int[] Ids) Scored(TokenizedExample example)
    {
        var first = Math.Max(example.PromptLength - 1, 0);
        var positions = Enumerable.Range(first, Math.Max(0, example.InputLength - first)).ToArray();
        return (positions, [.. positions.Select(p => example.Tokens[p])]);
    }
}

/// <summary>The MinED alignment of one example in batch coordinates.</summary>
/// <param name="StudentColumns">Batch columns of the student's scored positions (labels ≠ −100), in order.</param>
/// <param name="TeacherColumns">For each of them, the teacher batch column whose logits DSKD distils from, or −1 (DSKD then uses the one-hot gold target).</param>
public sealed record MinEdContentAlignment(IReadOnlyList<int> StudentColumns, IReadOnlyList<int> TeacherColumns);
