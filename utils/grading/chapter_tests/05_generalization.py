"""Grading tests for chapter 05 (generalization), run by `make grade`.

Each test runs in the judge, a process of its own, after all of the submission's cells, and
receives `answers`, the notebook's variables by name, carried over as data
(`utils.grading.judge`). A failed `assert` scores 0 and its message is the feedback. Each
test decides with the exercise's own check (`utils.checks.verdict`), so the self-check and the
grade cannot disagree.
"""

from utils.grading import graded, passes, trained_alike

# The chapter on 300 training images for 4 epochs, one seed, one weight decay, four layers in
# the initialisation experiment, and short playgrounds on the blobs only. The chapter's claims
# are about its defaults: at this size they run as notices. Exercise 05.2 trains with the
# chapter's train(), so at this size too; 05.4 with its train_playground, so its network gets
# PLAYGROUND_STEPS steps: 400 suffice for the quadrants. (A playground run costs about the same
# for 400 steps as for 2,000: building and compiling the model dominates.)
PARAMETERS = {"FIT_SAMPLES": 300, "VAL_SAMPLES": 1000, "EPOCHS": 4, "REPEATS": 1,
              "WEIGHT_DECAYS": [1e-3], "INIT_DEPTH": 4, "PLAYGROUND_POINTS": 200,
              "PLAYGROUND_STEPS": 400, "PLAYGROUND_DATASETS": ["blobs"]}
CELL_TIMEOUT = 120  # seconds; generous, so that a loaded machine changes no status
NOTEBOOK_TIMEOUT = 600
TEST_TIMEOUT = 30


@graded("05.1", points=3)
def early_stopping_epochs_match_keras(answers):
    passes("05.1", answers["early_stopping_epochs"])


@graded("05.2", points=3)
def weight_decay_chosen_on_validation_cross_entropy(answers):
    results, chosen = answers["decay_results"], answers["chosen_decay"]
    passes("05.2", (results, chosen))
    trained_alike(results, "val_cross_entropy", answers["EPOCHS"], "use train()")


@graded("05.3", points=3)
def deep_relu_network_keeps_its_signal(answers):
    passes("05.3", answers["deep_relu"])


@graded("05.4", points=3)
def quadrant_network_is_small_and_accurate(answers):
    from utils.checks import ch05

    ch05.judge_quadrant_network(answers["quadrant_model"], 4_404)  # the self-check's verdict
