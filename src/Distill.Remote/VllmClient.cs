using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Distill.Data;
using Microsoft.Extensions.Logging;

namespace Distill.Remote;

/// <summary>
/// The calls Distill makes to a vLLM server's OpenAI-compatible API: <c>POST /v1/completions</c> with
/// <c>prompt_logprobs</c> (top-k log-probs of every prompt position), <c>GET /v1/models</c> and <c>POST /tokenize</c>.
/// </summary>
/// <remarks>
/// Retries, backoff and timeouts live in the <see cref="HttpClient"/>'s resilience handler; this class turns responses
/// into values or clear errors. A response that is not complete (missing positions or fewer than k entries) is an
/// error: no partial result leaves this class. Thread-safe.
/// </remarks>
internal sealed class VllmClient(HttpClient http, RemoteTeacherOptions options, ILogger logger)
{
    private readonly string? apiKey = options.ResolveApiKey();

    internal RemoteTeacherOptions Options => options;

    internal bool HasApiKey => apiKey is not null;

    /// <summary>The served model ids (<c>GET /v1/models</c>).</summary>
    internal async Task<IReadOnlyList<string>> ModelsAsync(CancellationToken cancellationToken)
    {
        using var request = Request(HttpMethod.Get, "v1/models", null);
        var json = await SendAsync(request, "GET /v1/models", cancellationToken).ConfigureAwait(false);
        var data = json["data"] as JsonArray ?? throw Malformed("GET /v1/models", "no 'data' array");
        return [.. data.Select(m => m?["id"]?.GetValue<string>() ?? throw Malformed("GET /v1/models", "a model without 'id'"))];
    }

    /// <summary>The server's token ids of <paramref name="text"/> without special tokens (<c>POST /tokenize</c>).</summary>
    internal async Task<int[]> TokenizeAsync(string text, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["model"] = options.Model, ["prompt"] = text, ["add_special_tokens"] = false };
        using var request = Request(HttpMethod.Post, "tokenize", body);
        var json = await SendAsync(request, "POST /tokenize", cancellationToken).ConfigureAwait(false);
        var tokens = json["tokens"] as JsonArray ?? throw Malformed("POST /tokenize", "no 'tokens' array");
        return [.. tokens.Select(t => t?.GetValue<int>() ?? throw Malformed("POST /tokenize", "a null token"))];
    }

    /// <summary>
    /// Top-k log-probs at every scored position of each example, from one <c>/v1/completions</c> request whose prompts are
    /// the examples' ids plus one extra token (so that the last input position, which predicts the token after the input,
    /// is a prompt position too; its distribution does not depend on the extra token).
    /// </summary>
    internal async Task<TopKSequence[]> PromptTopKAsync(IReadOnlyList<TeacherCacheExample> examples, int k, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var prompts = new JsonArray();
        foreach (var e in examples)
        {
            if (e.InputIds.Count == 0)
            {
                throw new ArgumentException($"Row {e.Row} has no input tokens.", nameof(examples));
            }

            prompts.Add(new JsonArray([.. e.InputIds.Append(e.InputIds[^1]).Select(id => (JsonNode)id)]));
        }

        var body = new JsonObject
        {
            ["model"] = options.Model,
            ["prompt"] = prompts,
            ["max_tokens"] = 1,
            ["temperature"] = 0.0,
            ["prompt_logprobs"] = k,
            ["return_tokens_as_token_ids"] = true,
        };
        var what = $"POST /v1/completions (rows {examples[0].Row}…{examples[^1].Row})";
        using var request = Request(HttpMethod.Post, "v1/completions", body);
        var json = await SendAsync(request, what, cancellationToken).ConfigureAwait(false);
        var model = json["model"]?.GetValue<string>();
        if (model != options.Model)
        {
            throw new InvalidDataException($"{what}: the server answered for model '{model}', not the configured '{options.Model}' (check RemoteTeacherOptions.Model and the server's --served-model-name).");
        }

        var choices = json["choices"] as JsonArray ?? throw Malformed(what, "no 'choices' array");
        if (choices.Count != examples.Count)
        {
            throw new InvalidDataException($"{what}: {choices.Count} choices for {examples.Count} prompts.");
        }

        var byIndex = new JsonNode?[examples.Count];
        foreach (var choice in choices)
        {
            var index = choice?["index"]?.GetValue<int>() ?? throw Malformed(what, "a choice without 'index'");
            if (index < 0 || index >= examples.Count || byIndex[index] is not null)
            {
                throw Malformed(what, $"choice index {index} is out of range or repeated");
            }

            byIndex[index] = choice;
        }

        var results = new TopKSequence[examples.Count];
        long positions = 0;
        for (var i = 0; i < examples.Count; i++)
        {
            results[i] = Parse(examples[i], byIndex[i]!["prompt_logprobs"] as JsonArray, k, what);
            positions += examples[i].ScoredPositions.Count;
        }

        Log.RequestDone(logger, examples.Count, positions, clock.Elapsed.TotalMilliseconds);
        return results;
    }

    private static TopKSequence Parse(TeacherCacheExample e, JsonArray? promptLogprobs, int k, string what)
    {
        var n = e.InputIds.Count;
        if (promptLogprobs is null)
        {
            throw new InvalidDataException($"{what}: row {e.Row} has no 'prompt_logprobs' (is this a vLLM server? prompt_logprobs is a vLLM extension).");
        }

        if (promptLogprobs.Count != n + 1)
        {
            throw new InvalidDataException($"{what}: row {e.Row} has prompt_logprobs for {promptLogprobs.Count} positions; expected {n + 1} (missing positions).");
        }

        var m = e.ScoredPositions.Count;
        var ids = new int[m * k];
        var logProbs = new float[m * k];
        var tails = new float[m];
        var entries = new List<(int Id, double LogProb, int Rank)>(k + 1);
        for (var j = 0; j < m; j++)
        {
            var p = e.ScoredPositions[j];
            var dict = promptLogprobs[p + 1] as JsonObject
                ?? throw new InvalidDataException($"{what}: row {e.Row} has no log-probs at position {p + 1} (missing position).");
            entries.Clear();
            foreach (var (key, value) in dict)
            {
                if (!int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                {
                    throw Malformed(what, $"row {e.Row}, position {p + 1}: token key '{key}' is not a token id");
                }

                var logProb = value?["logprob"]?.GetValue<double>() ?? throw Malformed(what, $"row {e.Row}, position {p + 1}: token {id} has no 'logprob'");
                var rank = value["rank"]?.GetValue<int>() ?? int.MaxValue;
                entries.Add((id, double.IsNaN(logProb) ? double.NegativeInfinity : logProb, rank));
            }

            // The dict holds the top-k plus the prompt's own token when that ranks below k: keep the k best.
            entries.Sort((a, b) => a.Rank != b.Rank ? a.Rank.CompareTo(b.Rank) : b.LogProb.CompareTo(a.LogProb));
            if (entries.Count < k)
            {
                throw new InvalidDataException($"{what}: row {e.Row}, position {p + 1} has {entries.Count} log-probs, fewer than k = {k} (start the server with --max-logprobs {k} or more).");
            }

            double max = double.NegativeInfinity, sum = 0;
            for (var x = 0; x < k; x++)
            {
                max = Math.Max(max, entries[x].LogProb);
            }

            for (var x = 0; x < k; x++)
            {
                ids[(j * k) + x] = entries[x].Id;
                logProbs[(j * k) + x] = (float)entries[x].LogProb;
                sum += Math.Exp(entries[x].LogProb - max);
            }

            // log(1 − Σ p) in double; a top-k that holds all the mass (up to rounding) leaves −inf.
            var logSum = max + Math.Log(sum);
            tails[j] = logSum >= -1e-12 ? float.NegativeInfinity : (float)Math.Log(OneMinusExp(logSum));
        }

        return new TopKSequence(ids, logProbs, tails);
    }

    /// <summary>1 − eˣ for x &lt; 0, accurate near 0 (a Taylor series where 1 − Math.Exp(x) would cancel).</summary>
    private static double OneMinusExp(double x) =>
        x < -1e-3 ? 1 - Math.Exp(x) : -x * (1 + (x / 2) + (x * x / 6) + (x * x * x / 24));

    private HttpRequestMessage Request(HttpMethod method, string path, JsonNode? body)
    {
        var request = new HttpRequestMessage(method, new Uri(options.Endpoint!, path));
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }

        if (apiKey is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        }

        return request;
    }

    private async Task<JsonNode> SendAsync(HttpRequestMessage request, string what, CancellationToken cancellationToken)
    {
        HttpResponseMessage response;
        try
        {
            response = await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or Polly.Timeout.TimeoutRejectedException || (e is TaskCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw new RemoteTeacherException($"{what} to {options.Endpoint} failed after retries: {e.Message}", e);
        }

        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new RemoteTeacherException($"{what} to {options.Endpoint} returned {(int)response.StatusCode} {response.StatusCode}{(response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden ? " (check the API key)" : "")}: {ErrorMessage(text)}");
            }

            try
            {
                return JsonNode.Parse(text) ?? throw Malformed(what, "empty body");
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{what}: the server's response is not valid JSON ({e.Message}); first bytes: {Shorten(text)}", e);
            }
        }
    }

    /// <summary>vLLM's error body is <c>{"object": "error", "message": ...}</c> (older) or <c>{"error": {"message": ...}}</c>.</summary>
    private static string ErrorMessage(string text)
    {
        try
        {
            var json = JsonNode.Parse(text);
            var message = json?["message"] ?? json?["error"]?["message"];
            if (message is not null)
            {
                return message.GetValue<string>();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
        }

        return Shorten(text);
    }

    private static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "…";

    private static InvalidDataException Malformed(string what, string detail) => new($"{what}: unexpected response shape: {detail}.");
}

/// <summary>A remote teacher request that failed for good (after retries), or was refused by the server.</summary>
public sealed class RemoteTeacherException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RemoteTeacherException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed.</param>
    public RemoteTeacherException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What failed.</param>
    /// <param name="innerException">The cause.</param>
    public RemoteTeacherException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
