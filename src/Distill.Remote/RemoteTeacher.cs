using Distill.Data;
using Microsoft.Extensions.Http.Resilience;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Polly;

namespace Distill.Remote;

/// <summary>
/// A teacher served by vLLM: top-k prompt log-probs (with the log tail mass) of every scored position, as an
/// <see cref="ITeacher"/> during training and as an <see cref="ITopKProducer"/> that fills the offline cache.
/// </summary>
/// <remarks>
/// Splits work into requests of <see cref="RemoteTeacherOptions.RequestBatchSize"/> sequences and runs at most
/// <see cref="RemoteTeacherOptions.MaxConcurrency"/> at once. Transient failures (5xx, 408, 429, connection errors, attempt
/// timeouts) are retried with exponential backoff by the HTTP client's resilience pipeline; anything else, or exhausted
/// retries, fails the whole call: no caller ever sees a partial batch. Call <see cref="VerifyAsync(HfTokenizer, CancellationToken)"/>
/// once at start-up. Thread-safe.
/// </remarks>
public sealed class RemoteTeacher : ITeacher, ITopKProducer, IDisposable
{
    /// <summary>The name of the <see cref="HttpClient"/> that <c>AddDistillRemoteTeacher</c> configures.</summary>
    public const string HttpClientName = "Distill.Remote.Teacher";

    private readonly VllmClient client;
    private readonly SemaphoreSlim slots;
    private readonly HttpClient? ownedHttp;
    private readonly ILogger logger;

    internal RemoteTeacher(HttpClient http, RemoteTeacherOptions options, ILogger? logger, bool ownsHttp)
    {
        ArgumentNullException.ThrowIfNull(http);
        ArgumentNullException.ThrowIfNull(options);
        var errors = new RemoteTeacherOptionsValidator().Validate(null, options);
        if (errors.Failed)
        {
            throw new ArgumentException($"Invalid {nameof(RemoteTeacherOptions)}: {errors.FailureMessage}", nameof(options));
        }

        this.logger = logger ?? NullLogger.Instance;
        client = new VllmClient(http, options, this.logger);
        slots = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        ownedHttp = ownsHttp ? http : null;
        Log.RemoteConfigured(this.logger, options.Endpoint!, options.Model, options.K, options.RequestBatchSize, options.MaxConcurrency, client.HasApiKey ? "set" : "not set");
    }

    /// <summary>Gets the options.</summary>
    public RemoteTeacherOptions Options => client.Options;

    /// <inheritdoc />
    /// <remarks>Sparse top-k only; the tokenizer is checked against the student's by <see cref="VerifyAsync(HfTokenizer, CancellationToken)"/>.</remarks>
    public TeacherInfo Info => new() { Capabilities = TeacherCapabilities.SparseTopK };

    /// <inheritdoc />
    public string Description => $"vLLM {Options.Model} at {Options.Endpoint}";

    /// <summary>Creates a remote teacher with its own <see cref="HttpClient"/> and resilience pipeline (no DI needed).</summary>
    /// <param name="options">Endpoint, model, k, concurrency, timeouts, retries.</param>
    /// <param name="logger">Log (the API key is never logged).</param>
    /// <returns>The teacher; dispose it to release the connection pool.</returns>
    public static RemoteTeacher Create(RemoteTeacherOptions options, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
        ConfigureResilience(builder, options, logger ?? NullLogger.Instance);
#pragma warning disable CA2000 // the handler chain is owned by the HttpClient, which the teacher disposes
        var handler = new ResilienceHandler(builder.Build()) { InnerHandler = new SocketsHttpHandler() };
        var http = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
#pragma warning restore CA2000
        return new RemoteTeacher(http, options, logger, ownsHttp: true);
    }

    /// <summary>The pipeline: a total timeout, around retries with exponential backoff and jitter, around a per-attempt timeout.</summary>
    internal static void ConfigureResilience(ResiliencePipelineBuilder<HttpResponseMessage> builder, RemoteTeacherOptions options, ILogger logger)
    {
        builder
            .AddTimeout(options.TotalTimeout)
            .AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = Math.Max(options.MaxRetries, 1),
                ShouldHandle = options.MaxRetries == 0 ? _ => ValueTask.FromResult(false) : new HttpRetryStrategyOptions().ShouldHandle,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.RetryDelay,
                OnRetry = args =>
                {
                    var outcome = args.Outcome.Exception?.GetType().Name ?? $"HTTP {(int?)args.Outcome.Result?.StatusCode}";
                    Log.Retrying(logger, args.AttemptNumber + 1, outcome, args.RetryDelay);
                    return default;
                },
            })
            .AddTimeout(options.AttemptTimeout);
    }

    /// <summary>
    /// Start-up check: the model is served, and the server tokenizes every probe string exactly as
    /// <paramref name="tokenizer"/> does (same-vocabulary objectives compare distributions id by id).
    /// </summary>
    /// <param name="tokenizer">The student's tokenizer.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>A task that completes when the check passed.</returns>
    /// <exception cref="InvalidOperationException">The model is not served, or the tokenizers disagree (the message shows the probe and both id lists).</exception>
    public Task VerifyAsync(HfTokenizer tokenizer, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return VerifyAsync(text => tokenizer.EncodeToIds(text, addSpecialTokens: false), cancellationToken);
    }

    /// <inheritdoc cref="VerifyAsync(HfTokenizer, CancellationToken)"/>
    /// <param name="localTokenize">Tokenizes without special tokens, as the student does.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    public async Task VerifyAsync(Func<string, IReadOnlyList<int>> localTokenize, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(localTokenize);
        var models = await client.ModelsAsync(cancellationToken).ConfigureAwait(false);
        if (!models.Contains(Options.Model, StringComparer.Ordinal))
        {
            throw new InvalidOperationException($"The server at {Options.Endpoint} does not serve model '{Options.Model}'; it serves: {string.Join(", ", models.Select(m => $"'{m}'"))}. Set RemoteTeacherOptions.Model to one of them.");
        }

        foreach (var probe in Options.ProbeStrings)
        {
            var local = localTokenize(probe);
            var remote = await client.TokenizeAsync(probe, cancellationToken).ConfigureAwait(false);
            if (!local.SequenceEqual(remote))
            {
                throw new InvalidOperationException(
                    $"The server's tokenizer ({Options.Model} at {Options.Endpoint}) disagrees with the student's on probe {System.Text.Json.JsonSerializer.Serialize(probe)}: " +
                    $"local [{string.Join(", ", local)}] vs server [{string.Join(", ", remote)}]. Same-vocabulary distillation needs one tokenizer; use a cross-tokenizer objective or a matching teacher.");
            }
        }

        Log.TokenizerAgrees(logger, Options.ProbeStrings.Count);
    }

    /// <inheritdoc />
    /// <remarks>All requests succeed or the call throws (the others are cancelled); results keep the input order.</remarks>
    public async Task<IReadOnlyList<TopKSequence>> ProduceAsync(IReadOnlyList<TeacherCacheExample> examples, int k, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (k > Options.K)
        {
            throw new ArgumentOutOfRangeException(nameof(k), $"k = {k} exceeds RemoteTeacherOptions.K = {Options.K} (the server's --max-logprobs must also be at least k).");
        }

        var results = new TopKSequence[examples.Count];
        var pending = new List<(int Start, TeacherCacheExample[] Rows)>();
        var empty = new TopKSequence([], [], []);
        var group = new List<int>();
        for (var i = 0; i < examples.Count; i++)
        {
            if (examples[i].ScoredPositions.Count == 0)
            {
                results[i] = empty; // nothing to ask for
            }
            else
            {
                group.Add(i);
            }
        }

        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var tasks = group.Chunk(Options.RequestBatchSize).Select(async indices =>
        {
            await slots.WaitAsync(failed.Token).ConfigureAwait(false);
            try
            {
                var values = await client.PromptTopKAsync([.. indices.Select(i => examples[i])], k, failed.Token).ConfigureAwait(false);
                for (var j = 0; j < indices.Length; j++)
                {
                    results[indices[j]] = values[j];
                }
            }
            catch
            {
                await failed.CancelAsync().ConfigureAwait(false); // one failure stops the rest: the call fails as a whole
                throw;
            }
            finally
            {
                slots.Release();
            }
        }).ToArray();
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Report the failure that cancelled the others, not the cancellation.
            var cause = tasks.Where(t => t.IsFaulted).Select(t => t.Exception!.InnerException).FirstOrDefault(e => e is not OperationCanceledException);
            if (cause is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(cause).Throw();
            }

            throw;
        }

        return results;
    }

    /// <inheritdoc />
    /// <remarks>Blocks until the server answered for every row; the trainer calls <see cref="InferAsync"/> instead.</remarks>
    public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements) =>
        InferAsync(batch, requirements, CancellationToken.None).GetAwaiter().GetResult();

    /// <inheritdoc />
    /// <remarks>
    /// Asynchronous: the trainer's batch pipeline awaits it for the next micro-batch while the current one trains (one batch
    /// ahead). The output is built only after every request of the batch succeeded: a failed or cancelled request fails the
    /// whole call, so training never consumes a partial result. A cross-tokenizer objective (<c>uld</c>) gets the top-k of
    /// the batch's teacher tokens ([B, T_teacher, K]); skip <see cref="VerifyAsync(HfTokenizer, CancellationToken)"/> then, the
    /// server's tokenizer is the teacher's.
    /// </remarks>
    public async Task<TeacherOutput> InferAsync(DistillationBatch batch, ObjectiveRequirements requirements, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(requirements);
        if ((requirements.NeedsTeacherLogits && !requirements.AcceptsSparseTopK) || requirements.NeedsTeacherHiddenStates)
        {
            throw new InvalidOperationException($"The remote teacher ({Description}) provides sparse top-k log-probs only, but the objective needs {(requirements.NeedsTeacherHiddenStates ? "teacher hidden states" : "full teacher logits")}. Use an objective that accepts sparse targets (sparse_forward_kl, …, uld).");
        }

        // The rows are read from the batch before the first await (the batch's tensors belong to the caller's thread).
        var side = requirements.RequiresTeacherTokens ? TeacherCacheTokens.Teacher : TeacherCacheTokens.Student;
        var rows = SparseBatchRows.FromBatch(batch, side);
        var values = await ProduceAsync([.. rows.Select(r => r.Example)], Options.K, cancellationToken).ConfigureAwait(false);
        return SparseBatchRows.ToTeacherOutput(batch, side, rows, values, Options.K);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        slots.Dispose();
        ownedHttp?.Dispose();
    }
}
