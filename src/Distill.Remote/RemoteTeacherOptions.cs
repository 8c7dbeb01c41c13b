using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace Distill.Remote;

/// <summary>
/// Options of the remote teacher: a vLLM server's OpenAI-compatible API (<c>vllm serve MODEL --max-logprobs K</c>), bound
/// from configuration (e.g. section <c>"RemoteTeacher"</c>) by <c>AddDistillRemoteTeacher(...)</c>.
/// </summary>
/// <remarks>
/// The API key comes from <see cref="ApiKey"/> or, when that is empty, from the environment variable named by
/// <see cref="ApiKeyEnvironmentVariable"/>; it is sent as a bearer token and never logged.
/// </remarks>
public sealed class RemoteTeacherOptions
{
    /// <summary>Gets or sets the server's base address (e.g. <c>http://gpu-node:8000</c>); <c>/v1/completions</c>, <c>/v1/models</c> and <c>/tokenize</c> are resolved against it.</summary>
    [Required]
    public Uri? Endpoint { get; set; }

    /// <summary>Gets or sets the served model name (<c>--served-model-name</c>, or the model path given to <c>vllm serve</c>).</summary>
    [Required]
    [MinLength(1)]
    public string Model { get; set; } = "";

    /// <summary>Gets or sets the API key (<c>vllm serve --api-key</c>); empty = read <see cref="ApiKeyEnvironmentVariable"/>.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Gets or sets the environment variable that holds the API key when <see cref="ApiKey"/> is empty.</summary>
    /// <value>The default is <c>DISTILL_TEACHER_API_KEY</c>.</value>
    public string ApiKeyEnvironmentVariable { get; set; } = RemoteTeacherDefaults.ApiKeyEnvironmentVariable;

    /// <summary>Gets or sets k, the number of log-probs per position (<c>prompt_logprobs</c>); the server's <c>--max-logprobs</c> must be at least k.</summary>
    /// <value>The default is 20 (vLLM's default <c>--max-logprobs</c>).</value>
    [Range(1, 1 << 20)]
    public int K { get; set; } = RemoteTeacherDefaults.K;

    /// <summary>Gets or sets the number of sequences per HTTP request.</summary>
    /// <value>The default is 8.</value>
    [Range(1, 4096)]
    public int RequestBatchSize { get; set; } = RemoteTeacherDefaults.RequestBatchSize;

    /// <summary>Gets or sets the maximum number of requests in flight.</summary>
    /// <value>The default is 4.</value>
    [Range(1, 1024)]
    public int MaxConcurrency { get; set; } = RemoteTeacherDefaults.MaxConcurrency;

    /// <summary>Gets or sets the timeout of one attempt of one request.</summary>
    /// <value>The default is 120 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(RemoteTeacherDefaults.AttemptTimeoutSeconds);

    /// <summary>Gets or sets the timeout of one request including its retries.</summary>
    /// <value>The default is 10 minutes.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan TotalTimeout { get; set; } = TimeSpan.FromMinutes(RemoteTeacherDefaults.TotalTimeoutMinutes);

    /// <summary>Gets or sets the number of retries of a failed attempt (5xx, 408, 429, connection errors, attempt timeouts).</summary>
    /// <value>The default is 5.</value>
    [Range(0, 100)]
    public int MaxRetries { get; set; } = RemoteTeacherDefaults.MaxRetries;

    /// <summary>Gets or sets the first retry delay; later delays grow exponentially, with jitter.</summary>
    /// <value>The default is 1 second.</value>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Gets or sets the texts tokenized both locally and by the server at start-up; any difference is an error.</summary>
    public IList<string> ProbeStrings { get; set; } = [.. RemoteTeacherDefaults.ProbeStrings];

    /// <summary>The API key to send: <see cref="ApiKey"/>, else the environment variable, else <see langword="null"/>.</summary>
    internal string? ResolveApiKey() =>
        !string.IsNullOrEmpty(ApiKey) ? ApiKey :
        string.IsNullOrEmpty(ApiKeyEnvironmentVariable) ? null : Environment.GetEnvironmentVariable(ApiKeyEnvironmentVariable) is { Length: > 0 } key ? key : null;
}

/// <summary>Default values of <see cref="RemoteTeacherOptions"/>.</summary>
internal static class RemoteTeacherDefaults
{
    public const string ApiKeyEnvironmentVariable = "DISTILL_TEACHER_API_KEY";
    public const int K = 20;
    public const int RequestBatchSize = 8;
    public const int MaxConcurrency = 4;
    public const int AttemptTimeoutSeconds = 120;
    public const int TotalTimeoutMinutes = 10;
    public const int MaxRetries = 5;

    public static readonly string[] ProbeStrings =
    [
        "Hello, world!",
        " The quick brown fox jumps over the lazy dog.\n",
        "def f(x):\n    return x ** 2  # ünïcödé, 数字 123456789",
        "Question: What is 12 + 30?\nAnswer: 42",
    ];
}

/// <summary>Validates <see cref="RemoteTeacherOptions"/> at start-up (source-generated from the data annotations).</summary>
[OptionsValidator]
internal sealed partial class RemoteTeacherOptionsValidator : IValidateOptions<RemoteTeacherOptions>
{
}
