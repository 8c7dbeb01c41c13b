namespace Distill.Data.Alignment;

/// <summary>The result of <see cref="MinEditDistance.Dtw"/>.</summary>
/// <param name="Cost">Accumulated cost at the end of the path (<c>matrix[-1, -1]</c>).</param>
/// <param name="Matches">The path as (i, j) pairs from (0, 0) to the end.</param>
/// <param name="Series1ToSeries2">For each index of series 1, the indices of series 2 matched to it, ascending.</param>
/// <param name="Series2ToSeries1">For each index of series 2, the indices of series 1 matched to it, ascending.</param>
public sealed record DtwResult(double Cost, IReadOnlyList<(int I, int J)> Matches, IReadOnlyList<IReadOnlyList<int>> Series1ToSeries2, IReadOnlyList<IReadOnlyList<int>> Series2ToSeries1);

/// <summary>
/// MinED token alignment as DSKD re-implements it (<c>code/criterions/min_edit_dis_kld.py</c>, after FuseLLM): dynamic
/// time warping over the two token-string sequences with the edit distance of the strings, space markers removed, as the
/// local cost.
/// </summary>
/// <remarks>
/// <para>DTW: M[0,0] = 0, M[0,·] = M[·,0] = ∞, M[i+1,j+1] = cost(a_i, b_j) + min(M[i,j+1], M[i+1,j], M[i,j]). The path is
/// traced back from the last cell while i &gt; 0 or j &gt; 0, recording (i, j) and moving to the smallest of diagonal,
/// up, left (ties in that order, unavailable moves = ∞); (0, 0) is added last.</para>
/// <para>Cost: Levenshtein distance between the teacher token with every teacher space marker removed and the student
/// token with every student space marker removed (<c>Ġ</c> for byte-level BPE, <c>▁</c> for SentencePiece).</para>
/// <para>A student position is aligned when exactly one teacher position matched it and the vocabulary map sends that
/// teacher input token to the student input token (<see cref="AlignStudentToTeacher"/>); DSKD then distils from that
/// teacher row and falls back to the one-hot gold target elsewhere.</para>
/// </remarks>
public static class MinEditDistance
{
    /// <summary>Levenshtein distance over Unicode code points (insertions, deletions, substitutions, each cost 1), as Python's <c>editdistance.eval</c> on <c>str</c>.</summary>
    /// <param name="a">First string.</param>
    /// <param name="b">Second string.</param>
    /// <returns>The edit distance.</returns>
    public static int Levenshtein(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var x = a.EnumerateRunes().Select(r => r.Value).ToArray();
        var y = b.EnumerateRunes().Select(r => r.Value).ToArray();
        if (x.Length == 0)
        {
            return y.Length;
        }

        if (y.Length == 0)
        {
            return x.Length;
        }

        var previous = new int[y.Length + 1];
        var current = new int[y.Length + 1];
        for (var j = 0; j <= y.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= x.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= y.Length; j++)
            {
                var substitution = previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1);
                current[j] = Math.Min(Math.Min(previous[j] + 1, current[j - 1] + 1), substitution);
            }

            (previous, current) = (current, previous);
        }

        return previous[y.Length];
    }

    /// <summary>Dynamic time warping of two sequences under <paramref name="cost"/> (the simpledtw variant DSKD uses).</summary>
    /// <typeparam name="T">Element type.</typeparam>
    /// <param name="series1">First sequence (DSKD: the teacher tokens).</param>
    /// <param name="series2">Second sequence (DSKD: the student tokens).</param>
    /// <param name="cost">Local cost of matching an element of series 1 with one of series 2.</param>
    /// <returns>The path and the per-index mappings.</returns>
    /// <exception cref="ArgumentException">A sequence is empty.</exception>
    public static DtwResult Dtw<T>(IReadOnlyList<T> series1, IReadOnlyList<T> series2, Func<T, T, double> cost)
    {
        ArgumentNullException.ThrowIfNull(series1);
        ArgumentNullException.ThrowIfNull(series2);
        ArgumentNullException.ThrowIfNull(cost);
        if (series1.Count == 0 || series2.Count == 0)
        {
            throw new ArgumentException($"DTW needs two non-empty sequences (got {series1.Count} and {series2.Count} elements).");
        }

        int n = series1.Count, m = series2.Count;
        var matrix = new double[n + 1, m + 1];
        for (var i = 0; i <= n; i++)
        {
            matrix[i, 0] = double.PositiveInfinity;
        }

        for (var j = 0; j <= m; j++)
        {
            matrix[0, j] = double.PositiveInfinity;
        }

        matrix[0, 0] = 0;
        for (var i = 0; i < n; i++)
        {
            for (var j = 0; j < m; j++)
            {
                matrix[i + 1, j + 1] = cost(series1[i], series2[j]) + Math.Min(Math.Min(matrix[i, j + 1], matrix[i + 1, j]), matrix[i, j]);
            }
        }

        // Trace back on the trimmed matrix D[i, j] = matrix[i + 1, j + 1].
        var map1 = Enumerable.Range(0, n).Select(_ => new List<int>()).ToArray();
        var map2 = Enumerable.Range(0, m).Select(_ => new List<int>()).ToArray();
        var matches = new List<(int, int)>();
        int a = n - 1, b = m - 1;
        while (a > 0 || b > 0)
        {
            matches.Add((a, b));
            map1[a].Add(b);
            map2[b].Add(a);
            var diagonal = a > 0 && b > 0 ? matrix[a, b] : double.PositiveInfinity;
            var up = a > 0 ? matrix[a, b + 1] : double.PositiveInfinity;
            var left = b > 0 ? matrix[a + 1, b] : double.PositiveInfinity;

            // np.argmin: the first minimum wins (diagonal, then up, then left).
            if (diagonal <= up && diagonal <= left)
            {
                a--;
                b--;
            }
            else if (up <= left)
            {
                a--;
            }
            else
            {
                b--;
            }
        }

        matches.Add((0, 0));
        map1[0].Add(0);
        map2[0].Add(0);
        matches.Reverse();
        foreach (var list in map1)
        {
            list.Reverse();
        }

        foreach (var list in map2)
        {
            list.Reverse();
        }

        return new DtwResult(matrix[n, m], matches, map1, map2);
    }

    /// <summary>
    /// The MinED alignment of one example as DSKD computes it: DTW of teacher tokens against student tokens with the
    /// marker-stripped edit distance; student position j is aligned to teacher position k when k is the only teacher
    /// position matched to j and <paramref name="map"/> sends teacher id <c>teacherIds[k]</c> to student id
    /// <c>studentIds[j]</c>.
    /// </summary>
    /// <param name="student">The student tokenizer (token strings, space marker).</param>
    /// <param name="teacher">The teacher tokenizer.</param>
    /// <param name="studentIds">Student input ids at the scored positions (DSKD: where the label ≠ −100).</param>
    /// <param name="teacherIds">Teacher input ids at its scored positions.</param>
    /// <param name="map">The teacher → student vocabulary map.</param>
    /// <returns>For each student position, the aligned teacher position or −1.</returns>
    public static int[] AlignStudentToTeacher(HfTokenizer student, HfTokenizer teacher, IReadOnlyList<int> studentIds, IReadOnlyList<int> teacherIds, VocabularyMap map)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(studentIds);
        ArgumentNullException.ThrowIfNull(teacherIds);
        ArgumentNullException.ThrowIfNull(map);
        var studentTokens = student.ConvertIdsToTokens(studentIds);
        var teacherTokens = teacher.ConvertIdsToTokens(teacherIds);
        var matched = MatchTokens(teacherTokens, studentTokens, teacher.SpaceMarker, student.SpaceMarker);
        var aligned = new int[studentIds.Count];
        for (var j = 0; j < aligned.Length; j++)
        {
            var candidates = matched[j];
            aligned[j] = candidates.Count == 1 && map.TeacherToStudent(teacherIds[candidates[0]]) == studentIds[j] ? candidates[0] : -1;
        }

        return aligned;
    }

    /// <summary>DTW of teacher tokens (series 1) against student tokens (series 2) with the marker-stripped edit distance.</summary>
    /// <param name="teacherTokens">Teacher token strings.</param>
    /// <param name="studentTokens">Student token strings.</param>
    /// <param name="teacherMarker">The teacher's space marker, removed before comparing.</param>
    /// <param name="studentMarker">The student's space marker, removed before comparing.</param>
    /// <returns>For each student position, the teacher positions matched to it.</returns>
    public static IReadOnlyList<IReadOnlyList<int>> MatchTokens(IReadOnlyList<string> teacherTokens, IReadOnlyList<string> studentTokens, string teacherMarker, string studentMarker)
    {
        ArgumentNullException.ThrowIfNull(teacherTokens);
        ArgumentNullException.ThrowIfNull(studentTokens);
        ArgumentException.ThrowIfNullOrEmpty(teacherMarker);
        ArgumentException.ThrowIfNullOrEmpty(studentMarker);
        var teacherStripped = teacherTokens.Select(t => t.Replace(teacherMarker, string.Empty, StringComparison.Ordinal)).ToArray();
        var studentStripped = studentTokens.Select(s => s.Replace(studentMarker, string.Empty, StringComparison.Ordinal)).ToArray();
        var teacherIndex = Enumerable.Range(0, teacherStripped.Length).ToArray();
        var studentIndex = Enumerable.Range(0, studentStripped.Length).Select(j => -1 - j).ToArray();

        // Indices stand for the strings so one generic DTW serves both series (teacher ≥ 0, student < 0).
        var result = Dtw(teacherIndex, studentIndex, (t, s) => Levenshtein(teacherStripped[t], studentStripped[-1 - s]));
        return result.Series2ToSeries1;
    }
}
