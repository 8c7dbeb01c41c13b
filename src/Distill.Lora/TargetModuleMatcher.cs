using System.Text.RegularExpressions;

namespace Distill.Lora;

/// <summary>
/// PEFT's module-name rules: <c>check_target_module_exists</c> (targets, exclusions, layer indices), <c>get_pattern_key</c>
/// (rank/alpha patterns), <c>_set_trainable</c> (modules_to_save) and <c>_find_minimal_target_modules</c>.
/// </summary>
internal static class TargetModuleMatcher
{
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Whether <paramref name="key"/> (a full module name) is targeted by <paramref name="config"/>.</summary>
    /// <param name="config">The configuration; <see cref="LoraConfig.AllLinear"/> must already be expanded.</param>
    /// <param name="key">The module name, e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
    public static bool IsTarget(LoraConfig config, string key)
    {
        if (IsExcluded(config, key))
        {
            return false;
        }

        // Adapters never go on modules_to_save modules or inside them: "(^|.*\.){m}($|\..*)".
        if (config.ModulesToSave is { Count: > 0 } mts && mts.Any(m => Matches("modules_to_save", m, key, $"^(.*\\.)?{m}($|\\..*)")))
        {
            return false;
        }

        if (config.TargetModulesPattern is string pattern)
        {
            return FullMatch(pattern, key);
        }

        if (config.TargetModules is not { } targets)
        {
            return false;
        }

        if (targets.Contains(key))
        {
            return true;
        }

        if (!targets.Any(t => key.EndsWith("." + t, StringComparison.Ordinal)))
        {
            return false;
        }

        if (config.LayersToTransform is not { Count: > 0 } layers)
        {
            return true;
        }

        var index = LayerIndex(key, config.LayersPattern);
        return index is int i && layers.Contains(i);
    }

    /// <summary>Whether <paramref name="key"/> matches <c>exclude_modules</c>.</summary>
    public static bool IsExcluded(LoraConfig config, string key) =>
        config.ExcludeModulesPattern is string p ? FullMatch(p, key)
        : config.ExcludeModules is { Count: > 0 } ex && ex.Any(e => key == e || key.EndsWith("." + e, StringComparison.Ordinal));

    /// <summary>Whether <paramref name="key"/> is a modules_to_save module: PEFT's plain <c>key.endswith(name)</c>.</summary>
    public static bool IsModuleToSave(LoraConfig config, string key) =>
        config.ModulesToSave is { Count: > 0 } mts && mts.Any(m => key.EndsWith(m, StringComparison.Ordinal));

    /// <summary>The rank and alpha of a module: the first matching <c>rank_pattern</c> / <c>alpha_pattern</c> key, else r / lora_alpha.</summary>
    public static (int R, double Alpha) RankAndAlpha(LoraConfig config, string key)
    {
        var r = config.R;
        foreach (var (pattern, value) in config.RankPattern)
        {
            if (EndMatch(pattern, key))
            {
                r = value;
                break;
            }
        }

        var alpha = config.LoraAlpha;
        foreach (var (pattern, value) in config.AlphaPattern)
        {
            if (EndMatch(pattern, key))
            {
                alpha = value;
                break;
            }
        }

        return (r, alpha);
    }

    /// <summary>
    /// The smallest set of name suffixes that selects exactly <paramref name="targets"/> among <paramref name="others"/>
    /// (PEFT applies it to target lists of 20 or more entries before saving).
    /// </summary>
    public static IReadOnlyList<string> MinimalTargetModules(IReadOnlyCollection<string> targets, IEnumerable<string> others)
    {
        static List<string> Suffixes(string s)
        {
            // Shortest first: "q_proj", "self_attn.q_proj", ..., the full name.
            var parts = s.Split('.');
            return [.. Enumerable.Range(0, parts.Length).Select(i => string.Join('.', parts[(parts.Length - 1 - i)..]))];
        }

        var otherSuffixes = new HashSet<string>(others.SelectMany(Suffixes), StringComparer.Ordinal);
        var required = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (item, suffixes) in targets.Distinct().Select(t => (t, Suffixes(t))).OrderBy(x => x.Item2, SuffixListComparer.Instance))
        {
            foreach (var suffix in suffixes)
            {
                if (required.Contains(suffix) || otherSuffixes.Contains(suffix))
                {
                    continue;
                }

                if (!required.Any(req => item.EndsWith("." + req, StringComparison.Ordinal)))
                {
                    required.Add(suffix);
                    break;
                }
            }
        }

        return required.Count == 0 ? [.. targets.Order(StringComparer.Ordinal)] : [.. required.Order(StringComparer.Ordinal)];
    }

    private static int? LayerIndex(string key, IList<string>? layersPattern)
    {
        if (layersPattern is not { Count: > 0 })
        {
            var m = Regex.Match(key, @"^.*?\.[^.]*\.(\d+)\.", RegexOptions.None, RegexTimeout);
            return m.Success ? int.Parse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture) : null;
        }

        foreach (var p in layersPattern)
        {
            var m = Match("layers_pattern", p, key, $@"^.*?\.{p}\.(\d+)\.");
            if (m.Success)
            {
                return int.Parse(m.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    // Python re.fullmatch.
    private static bool FullMatch(string pattern, string key) => Matches("target_modules/exclude_modules", pattern, key, $"^(?:{pattern})\\z");

    // PEFT get_pattern_key: re.match(rf"(.*\.)?({key})$", name).
    private static bool EndMatch(string pattern, string key) => Matches("rank_pattern/alpha_pattern", pattern, key, $"^(.*\\.)?({pattern})\\z");

    private static bool Matches(string field, string pattern, string key, string regex) => Match(field, pattern, key, regex).Success;

    // A user pattern that is not a valid .NET regex, or that backtracks past the timeout, names the config field, the
    // pattern and the module instead of surfacing a bare RegexParseException / RegexMatchTimeoutException.
    private static Match Match(string field, string pattern, string key, string regex)
    {
        try
        {
            return Regex.Match(key, regex, RegexOptions.None, RegexTimeout);
        }
        catch (RegexMatchTimeoutException e)
        {
            throw new ArgumentException(
                $"LoRA config {field} pattern '{pattern}' took longer than {RegexTimeout.TotalSeconds:0.#} s to match module '{key}' (catastrophic backtracking); simplify the pattern.", e);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"LoRA config {field} pattern '{pattern}' is not a valid regular expression: {e.Message}", e);
        }
    }

    /// <summary>Python's lexicographic ordering of lists of strings.</summary>
    private sealed class SuffixListComparer : IComparer<List<string>>
    {
        public static readonly SuffixListComparer Instance = new();

        public int Compare(List<string>? x, List<string>? y)
        {
            ArgumentNullException.ThrowIfNull(x);
            ArgumentNullException.ThrowIfNull(y);
            for (var i = 0; i < Math.Min(x.Count, y.Count); i++)
            {
                var c = string.CompareOrdinal(x[i], y[i]);
                if (c != 0)
                {
                    return c;
                }
            }

            return x.Count.CompareTo(y.Count);
        }
    }
}
