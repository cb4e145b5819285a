"""The self-check questions of each chapter, in jupyterquiz's format.

Each chapter (keyed by its notebook's file stem) has a few quick questions on its central
ideas. A multiple-choice question lists its answers, each with ``correct`` and a
``feedback`` that explains why; a numeric question gives the value, a precision and a
default feedback. The questions are formative: nothing is recorded or graded.
"""

from __future__ import annotations


def mc(question: str, *answers: tuple[str, bool, str]) -> dict:
    """A multiple-choice question: ``answers`` are ``(text, correct, feedback)``."""
    return {"question": question, "type": "multiple_choice",
            "answers": [{"answer": a, "correct": c, "feedback": f} for a, c, f in answers]}


def numeric(question: str, value: float, precision: int, feedback: str, hint: str) -> dict:
    """A numeric question answered to ``precision`` significant digits."""
    return {"question": question, "type": "numeric", "precision": precision,
            "answers": [{"type": "value", "value": value, "correct": True,
                         "feedback": feedback},
                        {"type": "default", "feedback": hint}]}


QUESTIONS: dict[str, list[dict]] = {
    "closure_problem": [
        mc("How is the subgrid (SGS) tendency that a closure must learn defined in this book?",
           ("The coarse-grained tendency of the high-resolution truth minus the coarse "
            "model's own resolved tendency of the coarse-grained state", True,
            "Right: it is a budget residual, defined by the coarse model you will couple "
            "the closure to."),
           ("The eddy-flux divergence computed from the fine-grid fields", False,
            "The eddy-flux divergence is only one part of the residual; the source "
            "correction and the coarse scheme's own error are in it too."),
           ("The tendency of the high-resolution run, subsampled to the coarse grid", False,
            "Subsampling picks fine cells; the coarse model carries cell averages, and the "
            "resolved part must be subtracted.")),
        mc("You refine the grid of the truth run twice, keeping the coarse grid fixed. What "
           "happens to the closure terms?",
           ("They converge to a finite value: refining the numerics does not remove the "
            "closure problem", True, "Right: the closure error is set by the filter width, "
            "not by the truth's grid; only the discretization error of the truth shrinks."),
           ("They shrink to zero with the truth's grid spacing", False,
            "That is how a discretization error behaves; the closure terms stay because the "
            "coarse grid still cannot see the small scales."),
           ("They grow without bound", False, "They settle: the chapter measures changes "
            "below one per cent over the last doubling.")),
        mc("Before training anything on the SGS tendency, what should you check first?",
           ("That the coarse budget closes to round-off", True, "Right: a target whose "
            "budget does not close has a bug in the filter, the grid or the wind."),
           ("That a network reaches a high R^2 on a shuffled split", False,
            "A shuffled split of autocorrelated data flatters any model; and a score says "
            "nothing about whether the target is right."),
           ("That the SGS tendency has zero mean", False, "It need not: the source "
            "correction of a nonlinear source has a sign.")),
    ],
    "grayzone": [
        mc("A convection scheme written for 25 km grids assumes all of the convective flux "
           "is subgrid. Run on a 3 km grid, what does it do?",
           ("It counts twice the part of the flux that the 3 km grid already resolves",
            True, "Right: that is double counting; a scale-aware scheme supplies only the "
            "subgrid remainder."),
           ("Nothing changes: the subgrid share does not depend on the grid", False,
            "The share depends on dx / L_c: at 3 km the grid resolves much of a 2 km "
            "plume's transport."),
           ("It under-counts the flux", False, "It adds the resolved part on top of what "
            "the dynamics already carry: too much, not too little.")),
        mc("How should the grid spacing enter a scale-aware network?",
           ("Normalised, e.g. log(dx / L_c), exactly as in training, also at deployment",
            True, "Right: raw kilometres at deployment would silently move every input "
            "far out of the training range."),
           ("In kilometres, so that the network sees physical units", False,
            "Spacings span two decades; a network trained on log(dx / L_c) fed raw km is a "
            "silent error, not a crash."),
           ("It should not: a good network infers dx from the fields", False,
            "The chapter shows the closure trained at one spacing fails at another.")),
        mc("Which test measures skill at a resolution the closure has never seen?",
           ("Hold out a spacing inside the training range, with fields (seeds) never used "
            "in training, normalisation or early stopping", True,
            "Right: anything else leaks the held-out resolution or the held-out fields."),
           ("Test on new cells of a spacing that is also in training", False,
            "That is skill at a seen resolution."),
           ("Test on a spacing far outside the training range", False,
            "That tests extrapolation, which the chapter shows a network does not do well "
            "even with dx as an input.")),
    ],
    "universal_approximation": [
        mc("What does the universal approximation theorem guarantee?",
           ("A wide enough network can approximate a continuous function on a compact set "
            "to any accuracy", True, "Right: existence of a good fit, on a bounded set, for "
            "a continuous deterministic map."),
           ("Training will find that network", False, "It says nothing about the optimiser "
            "or the data."),
           ("The network extrapolates correctly outside the training data", False,
            "Outside the compact set there is no guarantee at all.")),
        mc("Two networks fit the same closure within 0.05 everywhere on the data range. "
           "Coupled into the model, must they behave alike?",
           ("No: stability depends on the network's slopes, which an approximation bound "
            "does not control", True, "Right: one steep unit can push the amplification "
            "factor above 1."),
           ("Yes: equal accuracy implies equal online behaviour", False,
            "The chapter shows one settling and one locked in a two-step oscillation."),
           ("Yes, if both were trained with the same loss", False,
            "The loss controls values, not slopes.")),
        mc("The subgrid tendency is not a function of the resolved state alone (the same "
           "state is followed by different tendencies). What does a network trained with "
           "mean squared error learn?",
           ("The conditional mean of the tendency given the state", True,
            "Right: the spread around it is lost unless you model it (stochastic closures, "
            "uncertainty)."),
           ("A random draw of the tendency", False, "A deterministic network cannot draw; "
            "MSE pulls it to the mean."),
           ("The largest possible tendency", False, "MSE is minimised by the mean, not by "
            "an extreme.")),
    ],
    "conservation": [
        mc("Which output form conserves the domain total for any weights of the network?",
           ("A flux at the cell faces (or a coefficient times a resolved gradient), turned "
            "into a tendency by the divergence", True, "Right: every flux leaves one cell "
            "and enters its neighbour, so the sum telescopes."),
           ("A cell tendency, trained long enough", False, "Training can make the budget "
            "small on training data, not zero for every input."),
           ("A cell tendency with a large network", False, "Size does not change the "
            "bookkeeping: a tendency head is free to create or destroy tracer.")),
        mc("What does the usual post-hoc fix of a tendency closure (subtract the "
           "volume-weighted mean) cost?",
           ("It turns a local error into a uniform one repaid in every cell", True,
            "Right: the budget closes, but cells far from the error change."),
           ("Nothing: it restores the budget exactly and changes no cell", False,
            "It changes every cell by the same amount."),
           ("It breaks conservation", False, "It restores the domain budget exactly; the "
            "cost is locality.")),
        mc("Why can a non-negative down-gradient coefficient closure only remove tracer "
           "variance?",
           ("Its flux runs from high to low values, so it acts as diffusion", True,
            "Right: with kappa >= 0 the variance tendency is never positive. Stepped in "
            "time, this holds only within the diffusive step limit of the integrator."),
           ("Because it is trained on the variance", False, "It is trained on the SGS "
            "tendency like the other heads; the sign is built into its form."),
           ("It cannot: it can create variance like any flux", False, "An unconstrained "
            "flux can; a down-gradient flux with kappa >= 0 cannot.")),
    ],
    "stability": [
        numeric("Forward Euler with damping lam = 1/7200 s^-1 and a closure slope "
                "k = 0.7 lam: what is the largest stable time step h_max, in seconds?",
                48000, 2, "Right: h_max = 2 / (lam - k) = 2 * 7200 / 0.3 s = 4.8e4 s.",
                "Solve |1 + h (k - lam)| = 1 for h: h_max = 2 / (lam - k)."),
        mc("A closure with an excellent offline R^2 blows up once coupled. Why did R^2 not "
           "warn you?",
           ("R^2 weights errors by variance; the steep, unstable part acts on a mode with "
            "little variance in the training data", True, "Right: it barely changes R^2 "
            "but puts that mode outside the stable window."),
           ("The test block was too short", False, "A longer test block of the same "
            "smooth data would not reveal a slope on a low-variance mode."),
           ("R^2 is computed in the wrong units", False, "Units do not change R^2.")),
        mc("How do you bound the Lipschitz constant of an MLP with 1-Lipschitz activations?",
           ("By the product of the spectral norms of its weight matrices", True,
            "Right: each layer stretches a vector by at most its largest singular value."),
           ("By the sum of the Frobenius norms", False, "Sums do not compose through a "
            "chain, and the Frobenius norm over-estimates the stretch."),
           ("By the largest weight", False, "One entry says little about how a matrix "
            "stretches a vector.")),
    ],
    "stochastic": [
        mc("Noise that stands for fast but smooth physics is integrated with Euler-Maruyama "
           "without a correction. What goes wrong?",
           ("It integrates the Ito SDE and drops the noise-induced drift b b' / 2", True,
            "Right: for multiplicative noise the mean evolution is biased; use a Heun step "
            "or add the drift."),
           ("Nothing: Ito and Stratonovich agree", False, "They agree only for additive "
            "noise."),
           ("It becomes unstable", False, "The scheme stays stable; it converges to a "
            "different SDE.")),
        mc("How is the diffusion coefficient of the reduced SDE estimated from data?",
           ("A Green-Kubo integral: the time integral of the autocovariance of the fast "
            "forcing, truncated at a few correlation times", True,
            "Right: D = beta^2 x^2 times that integral in the chapter's toy."),
           ("The variance of the fast variable", False, "The variance alone misses the "
            "correlation time: a slower forcing of the same variance diffuses more."),
           ("The mean of the fast forcing", False, "The mean gives a drift, not a "
            "diffusion.")),
        mc("When is a memoryless (white-noise) stochastic closure adequate?",
           ("When the forcing's correlation time is short compared with the resolved time "
            "scale and the model's time step", True, "Right: otherwise keep red noise or "
            "lagged inputs."),
           ("Always, if the diffusion coefficient is right", False,
            "At lambda t ~ 1 the closure over-estimates the spread by a factor e."),
           ("Only when the noise is additive", False, "The form of the noise and its "
            "memory are separate questions.")),
    ],
    "uncertainty": [
        mc("In a deep ensemble, which part of the predictive variance grows when an input "
           "leaves the training data?",
           ("The epistemic part, the spread of the members' means", True,
            "Right: members agree where data pin them down and diverge elsewhere."),
           ("The aleatoric part, the mean of the members' variances", False,
            "Each member learned the noise level where it saw data; nothing makes it grow "
            "beyond them."),
           ("Neither: both stay constant", False, "The chapter's flag is built on the "
            "growth of the epistemic part.")),
        mc("An 80 % prediction interval covers 60 % of held-out data. What do you conclude?",
           ("The closure is overconfident, however good its mean is", True,
            "Right: check calibration on a held-out, time-contiguous block, not only skill."),
           ("Nothing: coverage is not a measure of quality", False, "Coverage is exactly "
            "what an interval promises."),
           ("The interval is too wide", False, "It covers too little: it is too narrow.")),
        mc("The epistemic variance is low for a state. Is the closure then right there?",
           ("Not necessarily: the members share architecture and data and can agree and all "
            "be wrong", True, "Right: the flag is a necessary warning, not a certificate."),
           ("Yes: low epistemic variance proves the closure is accurate", False,
            "Agreement is not correctness."),
           ("Yes, if the ensemble has at least five members", False,
            "More members estimate the spread better; they do not make shared errors go "
            "away.")),
    ],
    "atmosphere_l96": [
        mc("Why is a shuffled train/test split of the Lorenz-96 record not a measure of "
           "skill?",
           ("Neighbouring samples are a short time apart and nearly identical, so the test "
            "set has twins in the training set", True,
            "Right: use a time-contiguous block with a gap."),
           ("Shuffling changes the physics", False, "The samples are the same; their "
            "independence is what is lost."),
           ("It is fine as long as the test set is 20 %", False, "The size does not "
            "remove the near copies.")),
        mc("Two closures: the better one offline blows up from a cold start, the other stays "
           "bounded. What does that tell you?",
           ("Offline and online rankings can disagree: judge a closure coupled, from "
            "varied initial states", True, "Right: the offline test block never leaves "
            "the attractor."),
           ("The offline score was computed wrongly", False, "Both can be right: they "
            "measure different things."),
           ("The coupled model has a bug", False, "A closure that extrapolates badly "
            "outside its training range is enough.")),
        mc("What must be dropped before computing the climate of a coupled run started far "
           "from the attractor?",
           ("The spin-up, while the run adjusts to the model's own attractor", True,
            "Right: statistics of the transient are not the model's climate."),
           ("The last part of the run", False, "The end is the part closest to the "
            "model's climate."),
           ("Nothing, as long as the run is long", False, "A long run dilutes the "
            "transient but still contains it.")),
    ],
    "ocean": [
        mc("Why does a learned non-negative eddy diffusivity keep the coupled ocean toy "
           "well behaved?",
           ("A down-gradient flux with kappa >= 0 can only dissipate tracer variance", True,
            "Right: the coupled model stays dissipative whatever the network predicts."),
           ("Because it scores best offline", False, "The chapter shows offline scores "
            "and online behaviour ranking closures differently."),
           ("Because it is trained longer", False, "Its form, not its training, gives the "
            "guarantee.")),
        mc("A direct-flux network beats a constant diffusivity offline and loses to it "
           "online. What is the lesson?",
           ("Always run a closure online, from several seeds, before believing it", True,
            "Right: offline skill is necessary, not sufficient."),
           ("The offline test was wrong", False, "It measured offline skill correctly."),
           ("Constant diffusivities are always better", False, "The learned kappa beats "
            "the constant both offline and online in the chapter.")),
        mc("What can a non-negative diffusivity not represent in ocean momentum closures?",
           ("Backscatter: eddies pushing energy up the scales", True,
            "Right: momentum closures need a form that allows it, with stability managed "
            "otherwise."),
           ("Mixing along gradients", False, "That is exactly what it represents."),
           ("Conservation of the tracer", False, "A flux-form closure conserves the "
            "tracer.")),
    ],
    "ocean_pyqg": [
        mc("The benchmark's subgrid PV forcing S_q is added to the coarse model's tendency. "
           "What is it?",
           ("The filtered high-resolution tendency minus the coarse model's tendency at the "
            "filtered state", True, "Right: the linear terms cancel and minus the divergence "
            "of the subgrid eddy PV flux remains."),
           ("The filtered eddy-flux divergence, with the sign it has on the left of the "
            "equation", False, "That is the benchmark's q_subgrid_forcing convention; added "
            "to the tendency it pushes the wrong way."),
           ("The difference between the high- and low-resolution PV", False, "A difference of "
            "states is not a tendency; S_q has units of 1/s^2.")),
        mc("A network trained on the eddy configuration keeps a moderate correlation on the "
           "jet configuration but its R^2 collapses in the lower layer. What does that say?",
           ("It places the forcing roughly right but with the wrong amplitude", True,
            "Right: R^2 punishes amplitude errors that correlation ignores."),
           ("The network is fine out of distribution", False, "Online, both networks of the "
            "chapter end further from the truth than no closure in the jet regime."),
           ("The jet data were filtered differently", False, "The same operator 1 defines "
            "both targets.")),
        mc("A similarity score of -1 for one metric means...",
           ("the run is twice as far from the truth as the coarse model without closure", True,
            "Right: 1 - D(closure)/D(no closure) = -1 when D(closure) = 2 D(no closure)."),
           ("the run matches the truth", False, "That is a score of 1."),
           ("the closure changed nothing", False, "That is a score of 0.")),
    ],
    "land": [
        mc("Why does a land model need a closure for runoff even if it knows the cell-mean "
           "soil moisture exactly?",
           ("Runoff is nonlinear in soil moisture, so the flux of the mean is not the mean "
            "of the flux (Jensen's inequality)", True,
            "Right: for a quadratic flux the gap is exactly the subgrid variance term."),
           ("Because the mean soil moisture is noisy", False, "The gap exists for an exact "
            "mean."),
           ("It does not: the flux of the mean is exact", False, "Only for a linear flux.")),
        mc("A network is given only the cell mean, another the mean and the subgrid "
           "variance. Which can close the gap?",
           ("Only the one that sees the variance", True, "Right: the same mean can hide "
            "very different runoff."),
           ("Both equally", False, "The mean alone does not determine the cell-mean "
            "flux."),
           ("Only the one that sees the mean, if it is deep enough", False, "No depth can "
            "recover information that is not in the input.")),
        mc("How does the chapter keep learned runoff from going negative?",
           ("An output transform (softplus) in the network", True,
            "Right: bounds the training data alone do not enforce must be built in."),
           ("By training longer", False, "Training does not guarantee a bound."),
           ("By clipping the training targets", False, "The targets are non-negative "
            "already; the outputs are what need the bound.")),
    ],
    "burgers": [
        mc("In the filtered Burgers equation, what is left unclosed?",
           ("The subgrid stress from filtering the nonlinear flux u^2 / 2", True,
            "Right: the same structure as the eddy flux of the tracer."),
           ("The viscous term", False, "Viscosity is linear: filtering commutes with it."),
           ("The forcing", False, "The forcing is known and filtered exactly.")),
        mc("Why do the Burgers closures of the chapter return a stress at the faces?",
           ("Momentum is then conserved to round-off whatever the network outputs", True,
            "Right: fluxes, not tendencies."),
           ("Because the stress is easier to learn", False, "Easy or not, the point is the "
            "bookkeeping."),
           ("To make the closure Galilean invariant", False, "Galilean invariance comes "
            "from using gradients as inputs.")),
        mc("A closure correlates above 0.99 with the subgrid stress offline. What else do "
           "you report?",
           ("The coupled run: its energy spectrum and dissipation against the filtered "
            "truth", True, "Right: offline and online, always side by side."),
           ("Nothing: 0.99 is conclusive", False, "The chapter shows it said little about "
            "the coupled run."),
           ("Only the training loss", False, "The training loss is an offline number "
            "too.")),
    ],
    "biology": [
        mc("What is the Michaelis-Menten rate law, seen as a parameterization?",
           ("A closure that replaces the fast enzyme-substrate complex by a function of "
            "the slow substrate alone", True, "Right: the quasi-steady-state approximation."),
           ("An exact solution of the full model", False, "It is exact only in the limit "
            "of strong time-scale separation."),
           ("A fit with no theory of its error", False, "Its error is controlled by "
            "epsilon = E0 / (S0 + Km).")),
        mc("How should data along trajectories be split for training and testing?",
           ("By whole trajectories (initial condition, parameter value)", True,
            "Right: samples along one trajectory are strongly correlated."),
           ("By random samples", False, "Random samples put near copies on both sides."),
           ("It does not matter for a small network", False, "The leak does not depend on "
            "the network's size.")),
        mc("What does eliminating the fast variable buy besides fewer equations?",
           ("It removes the stiffness, so much larger explicit time steps are stable", True,
            "Right: the reduced model tolerates steps more than a hundred times larger."),
           ("Better accuracy than the full model", False, "The full model is the "
            "reference; the reduced one approximates it."),
           ("Conservation of the enzyme", False, "The full model conserves it too.")),
    ],
    "scaling_up": [
        mc("Why can the same coarse-graining code process a record larger than memory?",
           ("It works on dask-backed xarray objects, computed chunk by chunk within a memory "
            "limit per worker", True, "Right: nothing is computed until a task asks for a "
            "chunk."),
           ("Because numpy compresses the arrays", False, "The data are processed lazily, "
            "not compressed."),
           ("It cannot: the record must fit in memory", False, "The page's large case "
            "processes a record of more than twice the memory of the whole cluster.")),
        mc("Along which dimension is the high-resolution record chunked, and why?",
           ("Along time: each chunk holds whole rows, which the periodic stencils need",
            True, "Right: chunks along x would cut the stencils at their edges."),
           ("Along x, to parallelise the stencils", False, "A periodic stencil needs the "
            "whole row."),
           ("It does not matter", False, "It does: the budget needs whole rows.")),
    ],
    "learning_online": [
        mc("What does a-posteriori (unrolled) training change compared with offline "
           "training?",
           ("The closure runs coupled to the coarse model for several steps and the loss "
            "compares the trajectory with the coarse-grained truth, backpropagating through "
            "the solver", True, "Right: the closure learns from its own feedback on the "
            "model."),
           ("It trains on more samples of the same offline target", False,
            "The target changes: a trajectory, not one instant."),
           ("It trains after the coupled run, on its errors, without gradients through "
            "the solver", False, "The gradient flows through every step of the solver.")),
        mc("On the steep toy, the closure fine-tuned through 16 steps stays bounded without "
           "a Lipschitz cap, yet its offline R^2 against the exact subgrid term falls. Why?",
           ("It learns what the discrete model needs at its time step, which is gentler "
            "than the exact term where that term is too steep for the step", True,
            "Right: it corrects the time-stepping error as well."),
           ("Unrolled training overfits", False, "It does better online, not worse."),
           ("The window was too short", False, "The 16-step window was the one that "
            "worked; 1 and 4 were not enough.")),
        mc("Why does a window longer than the predictability time not help on chaotic "
           "Lorenz-96?",
           ("The gradient grows like exp(lambda_1 T) and carries the chaos rather than the "
            "closure's error, while the cost grows linearly with the window", True,
            "Right: beyond 1/lambda_1 the loss landscape is dominated by chaos."),
           ("Lorenz-96 cannot be differentiated", False, "The chapter differentiates it "
            "with torch."),
           ("Longer windows always help", False, "Not on a chaotic system with an already "
            "stable offline closure.")),
    ],
    "opening_the_box": [
        mc("What does the diagonal of a stencil closure's Jacobian tell you?",
           ("The local feedback: how the closure's output in a cell responds to the state "
            "of that cell", True, "Right: its sign says whether the closure damps or "
            "amplifies."),
           ("The closure's offline R^2", False, "The Jacobian is about sensitivity, not "
            "skill."),
           ("Which training samples mattered most", False, "That would be a data "
            "attribution, not the Jacobian.")),
        mc("Integrated gradients attribute a prediction to the inputs. What must you state "
           "with the result?",
           ("The baseline it is relative to", True, "Right: the attributions sum to the "
            "prediction minus the prediction at the baseline."),
           ("Nothing: attributions are unique", False, "They depend on the baseline, and "
            "correlated inputs share credit arbitrarily."),
           ("The learning rate", False, "Attribution is computed after training.")),
        mc("Sparse regression finds a local quartic for the Lorenz-96 coupling. It matches "
           "the network's climate but runs away at a larger forcing. What is the lesson?",
           ("An equation is only as good as its library: outside the training range a "
            "polynomial is unconstrained", True, "Right: test a discovered equation "
            "online and out of distribution too."),
           ("Sparse regression is always worse than a network", False,
            "On Burgers the same tool recovers a known physical closure."),
           ("The forcing was computed wrongly", False, "The run-away is the polynomial's "
            "extrapolation.")),
    ],
    "learning_without_truth": [
        mc("What are the increments of a data-assimilation cycle, and why can a closure be "
           "learned from them?",
           ("Analysis minus forecast: they show, step after step, what the model got wrong, "
            "including the missing subgrid term", True,
            "Right: but the filter biases them, as the chapter measures."),
           ("Observation minus truth", False, "There is no truth in this setting; and that "
            "difference is the observation error."),
           ("The spread of the ensemble", False, "The spread is the filter's uncertainty, "
            "not the model's error.")),
        mc("Why does the ensemble Kalman filter of the chapter need inflation?",
           ("Twenty members of a model with a missing term underestimate the forecast "
            "error; without inflation the filter trusts its forecast and drifts away", True,
            "Right: inflation restores the spread the members lack."),
           ("Inflation makes the observations more accurate", False, "It scales the "
            "ensemble's spread, not the observations."),
           ("It is needed only for a perfect model", False, "A perfect model needs much "
            "less.")),
        mc("What does ensemble Kalman inversion (EKI) calibrate the closure against?",
           ("Observed climate statistics, with a noise covariance for the internal "
            "variability of a finite run", True, "Right: no training target from a truth "
            "is needed."),
           ("The exact coupling term of the truth", False, "That is what is missing "
            "without a truth."),
           ("The increments of the filter", False, "That is the other route of the "
            "chapter, the EnKF.")),
    ],
    "deploying": [
        mc("A host model passes the wind in m/s to a closure trained with km/h. What does the "
           "closure do?",
           ("It returns finite, plausible-looking but wrong tendencies; only a check of the "
            "contract before the first step catches it", True, "Right: the chapter's drifts "
            "all stay finite and make the closure no better than none."),
           ("It returns NaN, so the host stops", False, "No NaN appears: the numbers are "
            "simply wrong."),
           ("The runtime raises a units error", False, "A network has no idea of units; "
            "only the contract does.")),
        mc("The Fortran host and Python run the same TorchScript file for 1000 steps from the "
           "same state. How far apart are the runs?",
           ("Double-precision round-off (about 1e-15): both evaluate one float32 network "
            "with the same LibTorch kernels on the same inputs", True, "Right: any larger "
            "difference would be a bug in the host."),
           ("Float32 round-off of the state (about 1e-7)", False, "That is the tolerance, "
            "not what is measured; the measured gap is far smaller."),
           ("They decorrelate after a few hundred steps", False, "They cannot: the two "
            "runs compute the same numbers, so there is no difference to grow.")),
        mc("Why does the exported network carry its normalisation inside?",
           ("So that no host re-implements the scaling and drifts from the training "
            "constants; the contract still records them for audits", True, "Right: a "
            "forgotten standardisation is one of the silent drifts."),
           ("Because ONNX cannot export a network without it", False, "Any runtime runs "
            "the bare network; the choice is about reliability."),
           ("To make the network faster", False, "Two element-wise operations cost "
            "nothing measurable.")),
        mc("What is TorchScript's status in torch 2.13?",
           ("Deprecated: files still load and run, torch.jit warns to switch to "
            "torch.export, and the C++ successor is torch.export with AOTInductor", True,
            "Right: export a torch.export program beside the TorchScript file."),
           ("Removed: TorchScript files no longer load", False, "The chapter and the host "
            "load them with torch 2.13."),
           ("The recommended format for new C++ deployments", False, "The documentation "
            "points to torch.export.")),
    ],
}
