namespace Distill.Losses;

/// <summary>
/// A named objective constructor, registered as a singleton in DI. The <see cref="IObjectiveFactory"/> of this package
/// serves every registration, so other packages (or hosts) add objectives by registering more of these.
/// </summary>
/// <param name="Name">The name the factory accepts (e.g. <c>forward_kl</c>).</param>
/// <param name="Create">Creates a fresh objective instance (objectives are not thread-safe; one per trainer).</param>
public sealed record ObjectiveRegistration(string Name, Func<IServiceProvider, IDistillationObjective> Create);
