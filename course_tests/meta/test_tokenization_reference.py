"""The instructor's incremental BPE trainer (source/02_tokenization) learns exactly what the checks' direct reference
learns on a real slice of the course corpus: the merges the checks demand of students are the notebook's own."""
from course_tests.checks.tokenization import corpus, ref_train
from gradebox.student import load_notebook
from course_tests import adapters_for
from trailblaze.coursedir import COURSE


def test_incremental_trainer_equals_direct_reference_on_the_corpus():
    impl = load_notebook(COURSE.source_notebook("02_tokenization"), "02_tokenization", adapters_for("02_tokenization"))
    text = corpus("train")[:200_000]
    assert impl.call("train_bpe", text, 512) == ref_train(text, 512)
