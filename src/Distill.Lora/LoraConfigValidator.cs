using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace Distill.Lora;

/// <summary>Validates <see cref="LoraConfig"/> (bound through <c>IOptions&lt;LoraConfig&gt;</c> or passed to <see cref="LoraModel"/>).</summary>
internal sealed class LoraConfigValidator : IValidateOptions<LoraConfig>
{
    public ValidateOptionsResult Validate(string? name, LoraConfig options)
    {
        var failures = Failures(options);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    /// <summary>Throws <see cref="ArgumentException"/> listing every problem of <paramref name="config"/>.</summary>
    internal static void ThrowIfInvalid(LoraConfig config, string source)
    {
        var failures = Failures(config);
        if (failures.Count > 0)
        {
            throw new ArgumentException($"{source}: invalid LoRA configuration: {string.Join(" ", failures)}", nameof(config));
        }
    }

    internal static List<string> Failures(LoraConfig c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var f = new List<string>();
        if (c.R <= 0 || c.R > LoraConfig.MaxRank)
        {
            f.Add($"{nameof(LoraConfig.R)} (r) must be positive and at most {LoraConfig.MaxRank} (got {c.R}).");
        }

        if (double.IsNaN(c.LoraAlpha) || double.IsInfinity(c.LoraAlpha))
        {
            f.Add($"{nameof(LoraConfig.LoraAlpha)} (lora_alpha) must be finite (got {c.LoraAlpha}).");
        }

        if (c.LoraDropout is < 0 or >= 1 || double.IsNaN(c.LoraDropout))
        {
            f.Add($"{nameof(LoraConfig.LoraDropout)} (lora_dropout) must be in [0, 1) (got {c.LoraDropout}).");
        }

        if (c.TargetModules is not null && c.TargetModulesPattern is not null)
        {
            f.Add($"Set either {nameof(LoraConfig.TargetModules)} (a list) or {nameof(LoraConfig.TargetModulesPattern)} (a regex or 'all-linear'), not both.");
        }

        if (c.ExcludeModules is not null && c.ExcludeModulesPattern is not null)
        {
            f.Add($"Set either {nameof(LoraConfig.ExcludeModules)} or {nameof(LoraConfig.ExcludeModulesPattern)}, not both.");
        }

        if (c.TargetModules?.Any(string.IsNullOrEmpty) == true)
        {
            f.Add($"{nameof(LoraConfig.TargetModules)} contains an empty name.");
        }

        if (c.LayersToTransform is { Count: > 0 } && c.TargetModulesPattern is not null)
        {
            f.Add($"{nameof(LoraConfig.LayersToTransform)} (layers_to_transform) cannot be used with a target_modules pattern (as in PEFT).");
        }

        if (c.LayersPattern is { Count: > 0 } && c.LayersToTransform is not { Count: > 0 })
        {
            f.Add($"{nameof(LoraConfig.LayersPattern)} (layers_pattern) requires {nameof(LoraConfig.LayersToTransform)} (as in PEFT).");
        }

        foreach (var (k, v) in c.RankPattern)
        {
            if (v <= 0 || v > LoraConfig.MaxRank)
            {
                f.Add($"rank_pattern['{Distill.IO.InputFile.Bound(k)}'] must be positive and at most {LoraConfig.MaxRank} (got {v}).");
            }
        }

        foreach (var pattern in new[] { c.TargetModulesPattern, c.ExcludeModulesPattern }
            .Concat(c.RankPattern.Keys).Concat(c.AlphaPattern.Keys).Concat(c.ModulesToSave ?? []).Concat(c.LayersPattern ?? []))
        {
            if (pattern is null || pattern == LoraConfig.AllLinear)
            {
                continue;
            }

            try
            {
                _ = new Regex(pattern, RegexOptions.None, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException e)
            {
                f.Add($"'{Distill.IO.InputFile.Bound(pattern)}' is not a valid regular expression ({e.Message}).");
            }
        }

        if (c.UseDora)
        {
            f.Add($"{nameof(LoraConfig.UseDora)} (use_dora) is not supported.");
        }

        return f;
    }
}
