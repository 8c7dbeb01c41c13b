// Every test here runs a whole sample or a training run that seeds and draws from torch's process-wide random generator
// and sets its thread count. Run in parallel, another test's draws land between a run's seed and its initialisation, and
// a run that a test repeats for equality (the quickstart's cached SeqKD student) trains from different weights (seen on
// CI as an answer loss off in the fourth decimal). Tests in this assembly therefore run one at a time.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
