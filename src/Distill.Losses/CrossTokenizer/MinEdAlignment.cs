namespace Distill.Losses.CrossTokenizer;

/// <summary>
/// A precomputed MinED alignment of one example, which a batch source may put in <see cref="DistillationBatch.Alignment"/>
/// (one per row) so that <see cref="MinEdObjective"/> does not run the DTW on the training thread.
/// </summary>
/// <param name="StudentToTeacher">
/// For each student scored position j (the j-th position with label ≠ −100, in order), the index k of the teacher scored
/// position it is aligned to (k-th teacher position with label ≠ −100), or −1 when unaligned (zero or several DTW matches).
/// </param>
public sealed record MinEdAlignment(IReadOnlyList<int> StudentToTeacher);
