using Distill.Models;
using Distill.Training;
using Microsoft.Extensions.Logging;

namespace Distill.Data;

/// <summary>
/// Saves a model together with its tokenizer as one Hugging Face folder (<c>config.json</c>, <c>model.safetensors</c>,
/// <c>tokenizer.json</c>, <c>tokenizer_config.json</c>, ...), which transformers opens with <c>AutoTokenizer</c> and
/// <c>AutoModelForCausalLM</c>, and Distill with <see cref="AutoCausalLM.FromPretrained"/> and <see cref="HfTokenizer.FromPretrained"/>.
/// </summary>
public static class PretrainedFolder
{
    /// <summary>Writes the model's weights and config, then the tokenizer's files, into <paramref name="directory"/>.</summary>
    /// <param name="model">The model.</param>
    /// <param name="directory">The folder; created when missing.</param>
    /// <param name="tokenizer">The tokenizer whose files are written next to the weights.</param>
    /// <param name="maxShardBytes">Shard size limit (see <see cref="CausalLM.SavePretrained"/>); <see langword="null"/> = 5 GB.</param>
    /// <param name="logger">Optional logger for the save summary.</param>
    /// <returns><paramref name="directory"/>.</returns>
    /// <exception cref="ArgumentException">The tokenizer has more ids than the model's vocabulary (the folder would not load).</exception>
    public static string SavePretrained(this CausalLM model, string directory, HfTokenizer tokenizer, long? maxShardBytes = null, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            throw new ArgumentException(
                $"Tokenizer from {tokenizer.Source} has {tokenizer.VocabSize} ids but the model's vocab_size is {model.Config.VocabSize}; saving them together would give a folder whose tokens the model cannot embed.",
                nameof(tokenizer));
        }

        model.SavePretrained(directory, maxShardBytes, logger);
        return tokenizer.SavePretrained(directory);
    }

    /// <summary>
    /// Wraps a checkpoint writer so that every checkpoint's <c>student/</c> folder also gets the tokenizer files: with
    /// <see cref="HfCheckpointWriter"/>, each checkpoint is then a complete Hugging Face model folder.
    /// </summary>
    /// <param name="writer">The writer of the weights (e.g. <see cref="HfCheckpointWriter"/> or a PEFT adapter writer).</param>
    /// <param name="tokenizer">The student's tokenizer.</param>
    /// <returns>A writer that saves the weights, then the tokenizer files; loading restores the weights only.</returns>
    public static IModelCheckpointWriter WithTokenizer(this IModelCheckpointWriter writer, HfTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(tokenizer);
        return new TokenizerFilesCheckpointWriter(writer, tokenizer);
    }

    private sealed class TokenizerFilesCheckpointWriter(IModelCheckpointWriter inner, HfTokenizer tokenizer) : IModelCheckpointWriter
    {
        public void Save(ICausalLM model, string directory)
        {
            inner.Save(model, directory);
            tokenizer.SavePretrained(directory);
        }

        public void Load(ICausalLM model, string directory) => inner.Load(model, directory);
    }
}
