"""What the field guides say about training data and LoRA recipes, as data: each figure that a warning of
`ftgate data check` or `ftgate train` compares with, the reason it matters, and what the guides report.

The checks (pytest_ftgate.files.data_stats, pytest_ftgate.train.config) only compose these into one line:
the value found, the figure, the reason. Change a threshold or its reason here, and nowhere else.
A guide's figure is a warning, never a rejection: a team may know better for its own model, and the
line says what it is departing from.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Guide:
    figure: float  # the threshold compared with
    why: str  # why crossing it matters, in one clause
    guides: str  # what the field guides report, in figures


@dataclass(frozen=True)
class GuideWarning:
    """One warning: which check, the line printed (figure and reason), and the training lines it names."""

    check: str
    message: str
    lines: tuple[int, ...] = ()


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    span: str  # the range as the warning names it
    why_low: str  # what goes wrong below `low`
    why_high: str  # what goes wrong above `high`


# ---- training data (`ftgate data check`) -----------------------------------------------------------
MIN_ROWS = Guide(
    200,
    "so few rows are learnt by heart: the model overfits them instead of learning the task",
    "the guides: under 200 examples overfitting is a serious risk; 200-500 shift a format or style, "
    "500-5,000 teach instructions or a domain",
)
MIN_ROWS_PER_LABEL = Guide(
    200,  # the low end of the guides' "a few hundred", and the floor above: a label below it is under the floor
    "a label with fewer rows is, for that label, a data set under the overfitting floor: the model sees too few "
    "ways it is asked to learn when to answer it",
    "the guides: a few hundred examples per class to start a classifier",
)
# Answers a classification row is labelled by, without --label-key: the whole answer is the label when the
# answers take at most this many distinct values, each given by this many rows on average.
MAX_ANSWER_LABELS = 20
MIN_ROWS_PER_ANSWER_LABEL = 3
DUPLICATE_ANSWERS = Guide(
    0.10,  # our threshold, under the guides' 15%: a repeated answer is cheap to find and to fix
    "each copy trains the same answer again in every epoch, as an extra epoch on those rows would, and a "
    "repeated stock answer is what the model learns to give everywhere",
    "the guides: duplicates mask real generalisation, so deduplicate before training; a training set with 15% "
    "bad rows costs more than any hyperparameter search wins",
)
LENGTH_OUTLIER_Z = Guide(
    3.5,  # Iglewicz and Hoaglin's cut-off for the modified z-score (median/MAD), on log lengths
    "an answer far longer or shorter than the rest is usually another format (a pasted document, a cut-off or "
    "placeholder reply), and the model learns every format it is shown",
    "the guides: inconsistent answers teach an inconsistent model; hold every answer to one format",
)
MIN_ROWS_FOR_LENGTHS = 10  # fewer answers give no stable median to measure outliers from
BALANCE_DISTANCE = Guide(
    0.15,  # total variation: the share of training rows that would have to change label to match production
    "a label over-represented in training is what the model learns to over-predict, and an under-represented "
    "one is what it misses",
    "the guides: training data should roughly match production's mix of categories; their harmful example "
    "(80% of one kind where production has 20%) is a distance of 0.6",
)
BALANCE_NAMED_GAP = 0.05  # a label is named over- or under-represented when its share differs by 5 points or more
ANNOTATOR_AGREEMENT = Guide(
    0.90,
    "labels this noisy give the model no coherent pattern to learn",
    "the guides: two annotators should agree on at least 90% of examples",
)
ANNOTATOR_KAPPA = Guide(
    0.80,  # 90% agreement on two balanced labels, chance removed: (0.9 - 0.5) / (1 - 0.5)
    "raw agreement is inflated when one label dominates; 0.80 is the guides' 90% with chance removed on two "
    "balanced labels (more labels make 90% a higher kappa, so this is the lenient reading)",
    "the guides: two annotators should agree on at least 90% of examples",
)

# ---- LoRA recipes (`ftgate train`) -----------------------------------------------------------------
LEARNING_RATE = Range(
    1e-4, 3e-4, "the 1e-4 to 3e-4 the field guides give for LoRA",
    "full fine-tuning's rates (1e-5 to 5e-5) barely move a LoRA adapter from its zero start",
    "the loss falls fast because the model memorises rows, and it forgets what it knew (catastrophic forgetting)",
)
EPOCHS = Range(
    2, 3, "the 2 to 3 epochs the field guides give for LoRA",
    "one pass may stop before the answers' format is learnt: check that the eval loss had stopped falling",
    "every further pass over the same rows overfits, and on a few hundred rows overfitting can start within "
    "one epoch",
)
LORA_RANK = Range(
    8, 64, "the rank of 8 to 64 the field guides give for LoRA",
    "a rank under 8 has room for a format or tone change, not for a new task",
    "more trainable parameters and memory, and more room to memorise a small data set; ranks above 64 are for "
    "complex adaptations on large data",
)
# alpha "about 2r": alpha/r scales every LoRA update as the learning rate does; the guides set alpha to twice
# the rank (scale 2), and we tolerate half to twice that scale (1 to 4), about the width of their lr range
LORA_SCALE = Range(
    1, 4, "the scale of 1 to 4 allowed around the field guides' alpha = 2r (alpha from r to 4r)",
    "the update is scaled down as a learning rate under the guides' range would be",
    "the update is scaled up as a learning rate over the guides' range would be",
)
