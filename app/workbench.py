"""The pruning workbench's actions: compute or load importance, prune, save the pruned model, fine-tune,
evaluate and the sensitivity analysis -- each one job in the runner, its result written into the session.

Why a controller beside `AppController`: the Importance, Pruning and Metrics tabs trigger these actions
and show their results, but views only read and write the session; the jobs themselves are plain
functions in `app.pruning_jobs` (no Qt). Preconditions that fail (no model, no dataset, another job
running) are told to the user through `Dialogs.warning`; job errors take the runner's one error path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QObject, Signal

from app.dialogs import MODEL_FILTER, Dialogs
from app.jobs import CALIBRATION_IMAGES, export_deploy_job, quantize_deploy_job, runtime_timings_job
from app.folders import save_folder
from app.pruning_jobs import (SENSITIVITY_RATIOS, FinetuneOutcome, PruneOutcome, SensitivityResult, allocate_job, evaluate_job,
                              finetune_job, importance_job, load_importance_job, prune_job, save_pruned_job,
                              sensitivity_groups, sensitivity_job)
from app.project import project_stem
from app.state import Session
from app.worker import JobRunner

log = logging.getLogger(__name__)

IMPORTANCE_FILTER = "Importance results (*.json *.npz);;All files (*)"
def default_dataset() -> str | None:
    """The benchmark bundled with the app (a few dozen shelf images), so every job works on first start."""
    from core.resources import benchmark_dir

    p = benchmark_dir()
    return str(p.resolve()) if (p / "dataset.json").is_file() else None


def unique_path(path: Path) -> Path:
    """`path`, or `stem-2.pt`, `stem-3.pt`, ... : the first name not taken."""
    if not path.exists():
        return path
    for i in range(2, 10_000):
        p = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not p.exists():
            return p
    raise OSError(f"{path.parent}: no free file name for {path.name}")


class WorkbenchController(QObject):
    """Starts the workbench jobs; results go into the session, which the views follow."""

    deployed = Signal(object)  # an ExportResult or QuantizeResult: where Export / Quantize wrote
    allocated = Signal(str)  # what an allocation of ratios across units came to

    def __init__(self, session: Session, runner: JobRunner, dialogs: Dialogs, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.dialogs = dialogs
        self.checkpoint_every = 10  # fine-tuning checkpoints (a cancelled run resumes from the last one)
        self.latency_repeats = 5  # CPU latency runs per model in an evaluation

    # -- where things go ------------------------------------------------------------------------------
    def dataset(self) -> str | None:
        """The calibration / evaluation data: the session's choice, else the project's benchmark."""
        return self.session.dataset_path or default_dataset()

    def work_dir(self) -> Path:
        """Fine-tuning inputs, outputs and checkpoints: `NAME.work/` beside a saved project, else
        `Documents/os2d-studio/models` (never a temporary folder: a fine-tuned model is worth keeping)."""
        if self.session.project_path:
            p = Path(self.session.project_path)
            d = p.parent / f"{project_stem(p)}.work"
        else:
            d = save_folder("models")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def _ready(self, action: str, *, model: bool = True, pruned: bool = False, dataset: bool = False) -> bool:
        """Check what an action needs; tell the user what is missing."""
        s = self.session
        problem = None
        if self.runner.busy:
            problem = f"Wait for '{self.runner.current_name}' to finish, or cancel it."
        elif model and s.model is None:
            problem = "Open a model first (Model panel)."
        elif model and not s.model_info.units:
            problem = "This model has no prunable units the pruning engine knows."
        elif pruned and s.pruned is None:
            problem = "Prune the model first (Pruning tab), or open a pruned model."
        elif dataset and not self.dataset():
            problem = ("Choose a dataset folder (an OS2D CSV dataset, or grozi:PATH), or make one with "
                       "File → New sample benchmark….")
        if problem:
            self.dialogs.warning(f"Cannot {action}", problem)
            return False
        return True

    # -- data ------------------------------------------------------------------------------------------
    def new_benchmark(self, folder: str | None = None, seed: int = 0, config=None) -> bool:
        """Generate the full one-shot shelf benchmark (`os2d-studio synth`: 100 classes, 700 shelf images,
        a few minutes) in the worker and use it. Seed 0's val classes are the ones the default model never
        trained on. Without `folder`, asks where (Documents/os2d-studio/benchmarks) and writes `synth-SEED`
        there; a benchmark already in that place is used as it is. `config`: another size (tests)."""
        from core.data.synth import SynthConfig, generate

        if self.runner.busy:
            self.dialogs.warning("Cannot make a benchmark", f"Wait for '{self.runner.current_name}' to finish, "
                                                            "or cancel it.")
            return False
        if folder is None:
            parent = self.dialogs.open_folder("Where to write the new sample benchmark", str(save_folder("benchmarks")))
            if not parent:
                return False
            folder = str(Path(parent) / f"synth-{seed}")
        out = Path(folder)
        if (out / "dataset.json").is_file():
            self.session.set_dataset(str(out))
            self.dialogs.info("Sample benchmark", f"{out} already holds a benchmark: it is now the dataset.")
            return True
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            self.dialogs.error("Cannot make a benchmark", f"{out}: exists and is not empty; choose another folder.")
            return False

        def done(result) -> None:
            self.session.set_dataset(str(result.out_dir))

        return self.runner.start("Making a sample benchmark", generate, str(out), config or SynthConfig(seed=int(seed)),
                                 on_result=done) is not None

    # -- importance -----------------------------------------------------------------------------------
    def compute_importance(self, criteria: Sequence[str], num_images: int) -> bool:
        if not criteria:
            self.dialogs.warning("Cannot compute importance", "Choose at least one criterion.")
            return False
        from core.importance.result import data_free

        if not self._ready("compute importance", dataset=not data_free(criteria)):
            return False
        s = self.session
        model = s.model

        def done(result) -> None:
            if s.model is model:  # a result for a replaced model would not match it
                # the plan keeps its criterion (weight_l1 unless the user chose another): pruning here is
                # followed by fine-tuning, where weight L1 recovers best (bench/RESULTS.md); the view shows
                # the computed scores all the same
                s.set_importance(result)

        return self.runner.start("Computing importance", importance_job, model, self.dataset(), list(criteria),
                                 int(num_images), on_result=done) is not None

    def load_importance(self, path: str | None = None) -> bool:
        if not self._ready("load importance"):
            return False
        if path is None:
            path = self.dialogs.open_file("Load importance result", IMPORTANCE_FILTER)
            if not path:
                return False
        s = self.session

        def done(result) -> None:
            from app.pruning_jobs import importance_mismatch

            problem = importance_mismatch(result, s.model_info)
            if problem:
                self.dialogs.error("Cannot use this importance result", f"{path}: {problem}")
                return
            s.set_importance(result, adopt_criterion=True)

        return self.runner.start("Loading importance", load_importance_job, path, on_result=done) is not None

    # -- prune and save -------------------------------------------------------------------------------
    def prune(self, reconstruct_images: int = 0) -> bool:
        """Cut the plan's channels; with `reconstruct_images`, refit the next layers on that many train images
        of the dataset (LCP's reconstruction step)."""
        if not self._ready("prune", dataset=bool(reconstruct_images)):
            return False
        s = self.session
        model, plan = s.model, s.plan

        def done(outcome: PruneOutcome) -> None:
            if s.model is model:
                s.set_pruned(outcome.info, outcome.result)

        return self.runner.start("Pruning", prune_job, model, plan, s.importance,
                                 reconstruct_images=int(reconstruct_images),
                                 dataset=self.dataset() if reconstruct_images else None, on_result=done) is not None

    def allocate_ratios(self) -> bool:
        """Replace the plan's ratios by ratios per unit, channels ranked across units by the plan's criterion,
        at the MACs the plan's own ratios leave."""
        if not self._ready("allocate ratios"):
            return False
        s = self.session
        model, plan, info = s.model, s.plan, s.model_info
        if not plan.cuts_any(info.units):
            self.dialogs.warning("Cannot allocate ratios", "The plan removes nothing: set a ratio first, then "
                                 "allocate it across units.")
            return False

        def done(allocation) -> None:
            if s.model is model and s.plan == plan:
                s.set_plan(allocation.plan)
                self.allocated.emit(f"Allocated by {plan.criterion}: {allocation.summary()}")

        return self.runner.start("Allocating ratios", allocate_job, model, plan, s.importance, tuple(info.units),
                                 info.cost, on_result=done) is not None

    def suggested_pruned_name(self) -> str:
        s = self.session
        stem = Path(s.model.path).stem if s.model and s.model.path else "model"
        pruning = s.pruned.meta.get("pruning", {}) if s.pruned else {}
        ratio = pruning.get("plan", {}).get("ratio")
        criterion = pruning.get("criterion") or pruning.get("plan", {}).get("criterion")
        tag = f"-pruned{round(100 * ratio)}" if ratio else "-pruned"
        if criterion:  # also keeps it apart from the shipped default-pruned50.pt
            tag += f"-{criterion}"
        return f"{stem}{tag}.pt"

    def save_pruned(self, path: str | None = None) -> bool:
        """Save the pruned model (a file dialog when no path is given); never over the original."""
        if not self._ready("save the pruned model", model=False, pruned=True):
            return False
        s = self.session
        if path is None:
            folder = self.work_dir()  # the project's folder, else Documents/os2d-studio/models
            path = self.dialogs.save_file("Save pruned model", MODEL_FILTER, str(folder / self.suggested_pruned_name()))
            if not path:
                return False
            if Path(path).suffix.lower() not in (".pt", ".pth"):
                path += ".pt"
        inputs = [m.path for m in (s.model, s.pruned) if m is not None and m.path]
        if any(Path(p).resolve() == Path(path).resolve() for p in inputs):
            self.dialogs.error("Cannot save the pruned model",
                               f"{path}: that is an input model; choose another file (models are never overwritten).")
            return False
        return self._save_pruned_to(path) is not None

    def _save_pruned_to(self, path: str | Path, then=None):
        s = self.session
        pruned, result = s.pruned_info, s.prune_result

        def done(info) -> None:
            if s.pruned_info is pruned:
                s.set_pruned(info, result)
            if then is not None:
                then()

        return self.runner.start("Saving pruned model", save_pruned_job, pruned, str(path), prune_result=result,
                                 original=s.model, on_result=done)

    # -- fine-tune ------------------------------------------------------------------------------------
    def finetune(self, iterations: int, eval_images: int = 0, lr: float | None = None) -> bool:
        """Fine-tune the pruned model with distillation from the original (saved first if in memory)."""
        if not self._ready("fine-tune", pruned=True, dataset=True):
            return False
        s = self.session
        if not s.model.path:
            self.dialogs.warning("Cannot fine-tune", "The original model (the teacher) has no file.")
            return False
        if not s.pruned.path:  # core fine-tunes files: save the in-memory model into the work folder first
            target = unique_path(self.work_dir() / self.suggested_pruned_name())
            return self._save_pruned_to(target, then=lambda: self._start_finetune(iterations, eval_images, lr)) is not None
        return self._start_finetune(iterations, eval_images, lr)

    def finetune_output(self) -> Path:
        """Where fine-tuning the current pruned model writes: the same name again resumes a cancelled run."""
        src = Path(self.session.pruned.path)
        out = self.work_dir() / f"{src.stem}-ft.pt"
        if out.exists():  # a finished run of this input: start a new one beside it
            out = unique_path(out)
        return out

    def _start_finetune(self, iterations: int, eval_images: int, lr: float | None) -> bool:
        s = self.session
        if s.pruned is None or not s.pruned.path or s.model is None:
            return False
        s.start_finetune_log()

        started_from = s.pruned_info

        def done(outcome: FinetuneOutcome) -> None:
            s.set_finetune_summary(outcome.result.to_json())
            res = outcome.result
            name = Path(res.out).name
            where = f"{name} in {Path(res.out).parent}"
            before, after = res.map_before, res.map_after
            scores = (f"held-out mAP@0.5 {before:.3f} → {after:.3f}" if before is not None and after is not None
                      else "no held-out evaluation")
            if before is not None and after is not None and after < before and started_from is not None:
                # worse than where it started: keep the better model in view, say so, lose nothing
                self.dialogs.warning(
                    "Fine-tuning lowered mAP",
                    f"Fine-tuning made the pruned model worse ({scores}), so the model it started from stays the "
                    f"pruned model. The fine-tuned one is saved as {where}: File → Open pruned model… shows it. "
                    "More iterations or a lower learning rate usually help.")
                return
            s.set_pruned(outcome.info)
            self.dialogs.info("Fine-tuned model saved",
                              f"The pruned model is now the fine-tuned {where} ({scores}). The model it "
                              "started from is unchanged.")

        worker = self.runner.start("Fine-tuning", finetune_job, s.pruned.path, s.model.path, self.dataset(),
                                   str(self.finetune_output()), iterations=int(iterations),
                                   eval_images=int(eval_images), checkpoint_every=self.checkpoint_every, lr=lr,
                                   on_report=s.log_finetune, on_result=done)
        return worker is not None

    # -- evaluate and sensitivity ----------------------------------------------------------------------
    def evaluate(self, max_images: int) -> bool:
        """mAP@0.5, size, MACs and CPU latency of the original and (when there is one) the pruned model."""
        if not self._ready("evaluate", dataset=True):
            return False
        s = self.session
        models = {"original": s.model}
        if s.pruned is not None:
            models["pruned"] = s.pruned
        return self.runner.start("Evaluating", evaluate_job, models, self.dataset(), max_images=int(max_images),
                                 latency_repeats=self.latency_repeats, on_result=s.add_evaluations) is not None

    def time_runtimes(self) -> bool:
        """Latency of the original and (when there is one) the pruned model on every deployment runtime."""
        if not self._ready("time the runtimes"):
            return False
        s = self.session
        models = {"original": s.model}
        if s.pruned is not None:
            models["pruned"] = s.pruned
        return self.runner.start("Timing runtimes", runtime_timings_job, models, repeats=self.latency_repeats,
                                 on_result=s.set_runtime_timings) is not None

    def sensitivity(self, max_images: int, ratios: Sequence[float] = SENSITIVITY_RATIOS,
                    groups: Sequence[str] | None = None) -> bool:
        """Prune one group at a time at each ratio (the plan's criterion) and plot mAP against the ratio."""
        if not self._ready("run the sensitivity analysis", dataset=True):
            return False
        s = self.session
        plan = s.plan
        groups = tuple(groups) if groups is not None else sensitivity_groups(s.model_info.units, plan)
        partial = SensitivityResult(plan.criterion, tuple(float(r) for r in ratios), groups, int(max_images),
                                    Path(str(self.dataset())).name)
        s.set_sensitivity(partial)

        def point(p) -> None:
            if s.sensitivity is not None and s.sensitivity.criterion == partial.criterion:
                s.set_sensitivity(s.sensitivity.with_point(p))

        return self.runner.start("Sensitivity analysis", sensitivity_job, s.model, s.model_info.units, s.importance,
                                 plan, self.dataset(), ratios=tuple(ratios), groups=groups, max_images=int(max_images),
                                 on_report=point, on_result=s.set_sensitivity) is not None

    # -- deploy: export and quantize ------------------------------------------------------------------
    def deploy_source(self):
        """The model Export and Quantize work on: the pruned one, else the original; and its word."""
        s = self.session
        return (s.pruned, "pruned") if s.pruned is not None else (s.model, "original")

    def deploy_folder(self, kind: str) -> Path:
        """A new folder in the work folder for `kind` ("onnx", "int8"): `<model>-<kind>`, `-2`, ..."""
        loaded, role = self.deploy_source()
        stem = Path(loaded.path).stem if loaded is not None and loaded.path else role
        return unique_path(self.work_dir() / f"{stem}-{kind}")

    def _deploy_ready(self, action: str) -> bool:
        if self.runner.busy:
            self.dialogs.warning(f"Cannot {action}", f"Wait for '{self.runner.current_name}' to finish, or cancel it.")
            return False
        if self.session.model is None:
            self.dialogs.warning(f"Cannot {action}", "Open a model first (Model panel).")
            return False
        return True

    def export_deploy(self, folder: str | Path | None = None) -> bool:
        """Export the pruned model (else the original) as ONNX graphs into a new folder of the work folder
        (or `folder`, which must not hold an export already: nothing is overwritten)."""
        if not self._deploy_ready("export"):
            return False
        loaded, role = self.deploy_source()
        out = Path(folder) if folder is not None else self.deploy_folder("onnx")
        return self.runner.start(f"Exporting the {role} model", export_deploy_job, loaded, str(out),
                                 on_result=self.deployed.emit) is not None

    def quantize_deploy(self, folder: str | Path | None = None, num_images: int = CALIBRATION_IMAGES) -> bool:
        """Quantize the pruned model (else the original) to int8 on calibration images of the dataset; the
        OpenVINO int8 runtime then finds it, and a copy goes to a new folder of the work folder."""
        if not self._deploy_ready("quantize") or not self._ready("quantize", model=False, dataset=True):
            return False
        loaded, role = self.deploy_source()
        out = Path(folder) if folder is not None else self.deploy_folder("int8")
        return self.runner.start(f"Quantizing the {role} model", quantize_deploy_job, loaded, self.dataset(),
                                 str(out), num_images=int(num_images), on_result=self.deployed.emit) is not None
