using Distill.Data;
using Distill.Data.Alignment;
using Distill.Losses.DualSpace;
using static TorchSharp.torch;

namespace Distill.Losses.CrossTokenizer;

/// <summary>
/// MinED cross-tokenizer KD (minimum-edit-distance logit alignment, after FuseLLM) as DSKD computes it
/// (<c>code/criterions/min_edit_dis_kld.py</c> of songmzhang/DSKD), registered as <c>min_ed</c>.
/// </summary>
/// <remarks>
/// <para>Per example, over the student's scored positions C_s (labels ≠ −100) and the teacher's C_t:</para>
/// <list type="number">
/// <item>The INPUT tokens at those positions (the first is the last prompt token) are aligned by DTW with the edit distance of the
/// marker-stripped token strings (<see cref="MinEditDistance"/> in Distill.Data). Student position j is aligned to teacher
/// position k when k is its only match and the vocabulary map sends teacher input id x'[k] to student input id x[j].</item>
/// <item>Aligned rows: a student-vocabulary row filled with −1e5, then for every student id s with a teacher counterpart
/// (the first teacher id mapping to it, DSKD's <c>max_align_num = 1</c>) row[s] = z_t[k, stu2tea(s)] (float32). A row with no
/// entry other than −1e5 counts as unaligned.</item>
/// <item>Unaligned rows: one-hot logits, 100 at the gold student target and −1e5 elsewhere.</item>
/// <item>KD = Σ_{y ≠ −100} KL(softmax(ẑ_t/T) ‖ softmax(z_s/T)) (always forward KL); L = (1 − α)·CE + α·KD, normalised by the
/// student's token count.</item>
/// </list>
/// <para>Caveat kept from the official code: the alignment is on input tokens, so the teacher row used predicts the teacher's next
/// token, which may differ from the student's next token.</para>
/// <para>The alignment comes from <see cref="MinEdAlignment"/> entries in <see cref="DistillationBatch.MinEdAlignments"/> when present,
/// otherwise it is computed here from the two tokenizers.</para>
/// </remarks>
public sealed class MinEdObjective : IDistillationObjective
{
    /// <summary>The registered name.</summary>
    public const string RegisteredName = "min_ed";

    private readonly MinEdOptions options;
    private readonly VocabularyMap map;
    private readonly HfTokenizer? studentTokenizer;
    private readonly HfTokenizer? teacherTokenizer;
    private readonly long[] studentIds;   // student ids that have a teacher counterpart
    private readonly long[] teacherIds;   // their first teacher id (stu2tea)
    private readonly long[] teacherToStudent;

    /// <summary>Creates the objective.</summary>
    /// <param name="options">α and T; validated here.</param>
    /// <param name="map">The teacher → student vocabulary map.</param>
    /// <param name="studentTokenizer">The student tokenizer (token strings for the DTW), or <see langword="null"/> when every batch carries <see cref="MinEdAlignment"/>s.</param>
    /// <param name="teacherTokenizer">The teacher tokenizer, or <see langword="null"/> likewise.</param>
    /// <exception cref="ArgumentException">Invalid options, or only one tokenizer given.</exception>
    public MinEdObjective(MinEdOptions? options, VocabularyMap map, HfTokenizer? studentTokenizer = null, HfTokenizer? teacherTokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(map);
        this.options = options ?? new MinEdOptions();
        OptionChecks.ThrowIfInvalid(new MinEdOptionsValidator(), this.options, nameof(options));
        if ((studentTokenizer is null) != (teacherTokenizer is null))
        {
            throw new ArgumentException("MinED needs both tokenizers (to align token strings) or neither (precomputed MinEdAlignment in every batch).", studentTokenizer is null ? nameof(studentTokenizer) : nameof(teacherTokenizer));
        }

        this.map = map;
        this.studentTokenizer = studentTokenizer;
        this.teacherTokenizer = teacherTokenizer;
        var s2t = map.StudentToTeacherArray();
        studentIds = [.. Enumerable.Range(0, s2t.Length).Where(s => s2t[s] >= 0).Select(s => (long)s)];
        teacherIds = [.. studentIds.Select(s => (long)s2t[s])];
        teacherToStudent = [.. map.TeacherToStudentArray().Select(t => (long)t)];
    }

    /// <inheritdoc />
    public string Name => RegisteredName;

    /// <inheritdoc />
    public ObjectiveRequirements Requirements => CrossTokenizerRequirements.LogitsAndTeacherTokens;

    /// <inheritdoc />
    public nn.Module? Module => null;

    /// <inheritdoc />
    /// <remarks>Checks the teacher (dense logits) and that the vocabulary map fits both vocabularies.</remarks>
    public void Validate(ObjectiveSetup setup)
    {
        ObjectiveChecks.Validate(Name, Requirements, setup, sliceToSharedVocabulary: false, chunked: false);
        if (setup.Teacher is { VocabularySize: >= 0 } teacher)
        {
            CheckMapCovers(setup.StudentVocabularySize, teacher.VocabularySize);
        }
    }

    /// <inheritdoc />
    public ObjectiveResult Compute(ObjectiveContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var (teacherIdsTensor, teacherLabels) = ContextChecks.TeacherTokens(context, Name);
        var zs = ContextChecks.StudentLogits(context, Name);
        var zt = ContextChecks.TeacherLogits(context, Name);
        var batch = context.Batch;
        ContextChecks.SameSize(teacherLabels, "teacher labels", zt, "teacher logits", 1, Name);
        ContextChecks.SameSize(batch.Labels, "student labels", zs, "student logits", 1, Name);
        CheckMapCovers(zs.shape[^1], zt.shape[^1]);

        var alignments = Alignments(batch, teacherIdsTensor, teacherLabels);
        using var scope = NewDisposeScope();
        var (aligned, alignedRows) = AlignTeacherLogits(zs, zt, batch.InputIds, batch.Labels, teacherIdsTensor, teacherLabels, alignments);
        var mask = TokenReduction.ValidMask(batch.Labels);
        var ce = DskdMath.CrossEntropySum(zs, batch.Labels);
        var kd = DskdMath.ForwardKlSum(zs, aligned, mask, options.Temperature); // always forward KL
        var loss = ce.Mul(1.0 - options.Alpha).Add(kd.Mul(options.Alpha));
        var metrics = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            ["ce"] = ce,
            ["kd"] = kd,
            ["aligned_rows"] = alignedRows,
        };
        var count = mask.sum();
        return ObjectiveResults.Create(loss, count.to(ScalarType.Float32), count, metrics);
    }

    /// <summary>The one check that the vocabulary map fits the two vocabularies (at setup and per batch).</summary>
    private void CheckMapCovers(long studentVocabulary, long teacherVocabulary)
    {
        if (map.StudentVocabSize > studentVocabulary || map.TeacherVocabSize > teacherVocabulary)
        {
            throw new InvalidOperationException($"Objective '{Name}': the vocabulary map covers {map.TeacherVocabSize} teacher and {map.StudentVocabSize} student ids, but the models have {teacherVocabulary} (teacher) and {studentVocabulary} (student) entries.");
        }
    }

    /// <summary>
    /// The student-vocabulary "teacher logits" MinED distils from: aligned rows mapped through the vocabulary map, one-hot
    /// gold rows elsewhere, and a detached float32 copy of the student logits at unscored positions.
    /// </summary>
    /// <param name="studentLogits">[B, L_s, V_s].</param>
    /// <param name="teacherLogits">[B, L_t, V_t].</param>
    /// <param name="inputIds">Student input ids [B, L_s].</param>
    /// <param name="labels">Student labels [B, L_s].</param>
    /// <param name="teacherInputIds">Teacher input ids [B, L_t].</param>
    /// <param name="teacherLabels">Teacher labels [B, L_t].</param>
    /// <param name="alignments">Per example, per student scored position: the teacher scored position or −1.</param>
    /// <returns>[B, L_s, V_s] float32 without gradient, and the number of aligned rows (float32 scalar on the device).</returns>
    internal (Tensor Logits, Tensor AlignedRows) AlignTeacherLogits(Tensor studentLogits, Tensor teacherLogits, Tensor inputIds, Tensor labels, Tensor teacherInputIds, Tensor teacherLabels, IReadOnlyList<IReadOnlyList<int>> alignments)
    {
        using var scope = NewDisposeScope();
        var device = studentLogits.device;
        var vs = studentLogits.shape[^1];
        var keys = tensor(studentIds, dtype: ScalarType.Int64, device: device);
        var values = tensor(teacherIds, dtype: ScalarType.Int64, device: device);
        var t2s = tensor(teacherToStudent, dtype: ScalarType.Int64, device: device);
        var rows = new List<Tensor>();
        var alignedRows = zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: device);
        using (no_grad())
        {
            for (var b = 0; b < studentLogits.shape[0]; b++)
            {
                var sc = labels[b].ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).nonzero().view(-1);       // [n_s]
                var tc = teacherLabels[b].ne(TorchScalars.Constant(DistillationBatch.IgnoreIndex)).nonzero().view(-1); // [n_t]
                var ns = sc.shape[0];
                var outRow = studentLogits[b].detach().to(ScalarType.Float32).clone();            // [L_s, V_s]
                if (ns == 0)
                {
                    rows.Add(outRow);
                    continue;
                }

                var a = alignments[b];
                if (a.Count != ns)
                {
                    throw new InvalidOperationException($"Objective '{Name}': the alignment of batch row {b} has {a.Count} entries, but the row has {ns} scored student positions.");
                }

                var nt = tc.shape[0];
                if (a.Any(k => k >= nt))
                {
                    throw new InvalidOperationException($"Objective '{Name}': the alignment of batch row {b} points past the row's {nt} scored teacher positions.");
                }

                var match = tensor(a.Select(k => (long)k).ToArray(), dtype: ScalarType.Int64, device: device); // [n_s]
                var ok = match.ge(TorchScalars.Constant(0));
                var idx = where(ok, match, zeros_like(match));
                var studentIn = inputIds[b].index_select(0, sc);                                   // [n_s]
                var target = labels[b].index_select(0, sc);                                        // [n_s]
                Tensor mapped;
                if (nt == 0)
                {
                    ok = zeros_like(ok);
                    mapped = full(ns, vs, TorchScalars.Constant(DskdMath.NegativeFill), dtype: ScalarType.Float32, device: device);
                }
                else
                {
                    var teacherPos = tc.index_select(0, idx);                                      // [n_s]
                    var teacherIn = teacherInputIds[b].index_select(0, teacherPos);
                    // The teacher input token must map to the student input token (DSKD's consistency check).
                    ok = ok.logical_and(t2s.index_select(0, teacherIn).eq(studentIn));
                    var teacherRows = teacherLogits[b].index_select(0, teacherPos).to(ScalarType.Float32); // [n_s, V_t]
                    mapped = full(ns, vs, TorchScalars.Constant(DskdMath.NegativeFill), dtype: ScalarType.Float32, device: device);
                    mapped.index_copy_(1, keys, teacherRows.index_select(1, values));
                }

                ok = ok.logical_and(mapped.max(-1).values.ne(TorchScalars.Constant(DskdMath.NegativeFill)));
                var oneHot = full(ns, vs, TorchScalars.Constant(DskdMath.NegativeFill), dtype: ScalarType.Float32, device: device)
                    .scatter_(1, target.unsqueeze(-1), full(ns, 1, TorchScalars.Constant(100.0), dtype: ScalarType.Float32, device: device));
                var rowsB = where(ok.unsqueeze(-1), mapped, oneHot);
                outRow.index_copy_(0, sc, rowsB);
                alignedRows = alignedRows.Add(ok.sum().to(ScalarType.Float32));
                rows.Add(outRow);
            }
        }

        return (stack(rows).MoveToOuterDisposeScope(), alignedRows.MoveToOuterDisposeScope());
    }

    private List<IReadOnlyList<int>> Alignments(DistillationBatch batch, Tensor teacherInputIds, Tensor teacherLabels)
    {
        var result = new List<IReadOnlyList<int>>();
        using var ids = batch.InputIds.cpu();
        using var labels = batch.Labels.cpu();
        using var tIds = teacherInputIds.cpu();
        using var tLabels = teacherLabels.cpu();
        for (var b = 0; b < batch.BatchSize; b++)
        {
            if (batch.MinEdAlignments is { } given && b < given.Count)
            {
                result.Add(given[b].StudentToTeacher);
                continue;
            }

            if (studentTokenizer is null || teacherTokenizer is null)
            {
                throw new InvalidOperationException($"Objective '{Name}' has no tokenizers and batch row {b} carries no MinEdAlignment: pass the two tokenizers to the objective (or MinEdOptions.StudentTokenizerPath / TeacherTokenizerPath), or put a MinEdAlignment per row in DistillationBatch.MinEdAlignments.");
            }

            var s = ScoredInputs(ids[b], labels[b]);
            var t = ScoredInputs(tIds[b], tLabels[b]);
            result.Add(s.Length == 0 || t.Length == 0
                ? Enumerable.Repeat(-1, s.Length).ToArray()
                : MinEditDistance.AlignStudentToTeacher(studentTokenizer, teacherTokenizer, s, t, map));
        }

        return result;
    }

    private static int[] ScoredInputs(Tensor ids, Tensor labels)
    {
        var i = ids.data<long>().ToArray();
        var l = labels.data<long>().ToArray();
        return [.. i.Where((_, k) => l[k] != DistillationBatch.IgnoreIndex).Select(v => checked((int)v))];
    }
}
