"""Regularisation baselines as per-step hooks of the shared training loop: EWC (Kirkpatrick et al. 2017; one penalty
per task), online EWC (Schwarz et al. 2018; one running Fisher) and SI (Zenke et al. 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.train import Hook


def diagonal_fisher(model: nn.Module, x: Tensor, gen: torch.Generator, chunk: int = 64) -> dict[str, Tensor]:
    """Diagonal Fisher information E_x E_{y ~ p(y|x)} (d log p(y|x) / d theta)^2, with per-sample gradients
    computed in one vectorised call (torch.func)."""

    params = {k: v.detach() for k, v in model.named_parameters()}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probs = model(x).softmax(-1)
    y = torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(1).to(x.device)

    def log_lik(p: dict[str, Tensor], xi: Tensor, yi: Tensor) -> Tensor:
        log_probs = F.log_softmax(functional_call(model, p, (xi.unsqueeze(0),)), -1)[0]
        return log_probs.gather(0, yi.unsqueeze(0)).squeeze(0)

    per_sample = vmap(grad(log_lik), in_dims=(None, 0, 0))
    fisher = {k: torch.zeros_like(v) for k, v in params.items()}
    for i in range(0, len(x), chunk):  # chunks bound the memory of per-sample gradients
        for k, g in per_sample(params, x[i : i + chunk], y[i : i + chunk]).items():
            fisher[k] += (g**2).sum(0)
    model.train(was_training)
    return {k: v / len(x) for k, v in fisher.items()}


def diagonal_fisher_closed_form(model: nn.Module, x: Tensor, gen: torch.Generator) -> dict[str, Tensor]:
    """The same diagonal Fisher as :func:`diagonal_fisher` -- the same labels y ~ p(y|x), drawn from ``gen`` in
    the same way -- in closed form for a network whose parameters all belong to ``nn.Linear`` layers (the study's
    MLP): sample i's gradient of a Linear weight is the outer product g_i a_i^T of the gradient at the layer's output
    and its input, so sum_i (g_i a_i^T)^2 = (g^2)^T (a^2), one matmul per layer from one backward pass (the
    samples are independent in eval mode). Equal to the per-sample loop up to float rounding; selected by
    ``fisher_method="closed_form"``."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    owned = {id(p) for m in linears for p in m.parameters(recurse=False)}
    if any(id(p) not in owned for p in model.parameters()):
        raise ValueError("the closed-form Fisher needs every parameter in an nn.Linear layer")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        probs = model(x).softmax(-1)
    y = torch.multinomial(probs.cpu(), 1, generator=gen).squeeze(1).to(x.device)
    inputs: dict[nn.Module, Tensor] = {}
    outputs: dict[nn.Module, Tensor] = {}

    def keep(module: nn.Module, args: tuple[Tensor, ...], out: Tensor) -> None:
        inputs[module], outputs[module] = args[0].detach(), out

    handles = [m.register_forward_hook(keep) for m in linears]
    try:
        with torch.enable_grad():
            log_lik = F.log_softmax(model(x), -1).gather(1, y.unsqueeze(1)).sum()
            grads = torch.autograd.grad(log_lik, [outputs[m] for m in linears])
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    fisher: dict[str, Tensor] = {}
    names = {id(p): k for k, p in model.named_parameters()}
    for m, g in zip(linears, grads):
        g2 = g.detach() ** 2
        fisher[names[id(m.weight)]] = g2.T @ inputs[m] ** 2 / len(x)
        if m.bias is not None:
            fisher[names[id(m.bias)]] = g2.sum(0) / len(x)
    return {k: fisher[k] for k in names.values()}


class Regulariser(Hook):
    """The quadratic penalty of EWC, online EWC or SI: strength * sum_i importance_i (theta_i - anchor_i)^2.

    Separate EWC keeps one term per task, sum_k F_k (theta - theta_k)^2, which equals A (theta - m)^2 + const with
    A = sum_k F_k and m = sum_k F_k theta_k / A (the precision-weighted anchor): we store A and m, so a step costs
    the same after 50 tasks as after one, with identical gradients. Online EWC decays the running Fisher by
    ``online_gamma`` and re-anchors at the latest parameters; SI accumulates its importances Omega.
    """

    def __init__(self, kind: str, cfg: Config) -> None:
        if kind not in ("ewc", "online_ewc", "si", "powerlaw_ewc"):
            raise ValueError(f"regulariser {kind!r}: expected ewc, online_ewc, si or powerlaw_ewc")
        self.kind, self.cfg = kind, cfg
        self.strength = {
            "si": cfg.si_c,
            "online_ewc": cfg.online_ewc_lambda / 2,
            "powerlaw_ewc": cfg.powerlaw_ewc_lambda / 2,
        }.get(kind, cfg.ewc_lambda / 2)
        self.importance: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}
        self.si_start: dict[str, Tensor] = {}
        self.si_prev: dict[str, Tensor] = {}
        self.si_path: dict[str, Tensor] = {}

    def penalty(self, model: nn.Module) -> Tensor | float:
        if not self.importance:
            return 0.0
        return self.strength * sum(
            (self.importance[k] * (p - self.anchor[k]) ** 2).sum() for k, p in model.named_parameters()
        )

    @torch.no_grad()
    def add_penalty_grad(self, model: nn.Module) -> None:
        """Add d penalty / d theta = 2 strength importance (theta - anchor) to every ``p.grad`` (after
        ``backward()``): the same update as back-propagating :meth:`penalty`, without an autograd graph."""
        if not self.importance:
            return
        for k, p in model.named_parameters():
            if p.grad is not None:
                p.grad.add_(2 * self.strength * self.importance[k] * (p - self.anchor[k]))

    def begin_task(self, model: nn.Module) -> None:
        if self.kind == "si":
            self.si_start = {k: p.detach().clone() for k, p in model.named_parameters()}
            self.si_prev = {k: v.clone() for k, v in self.si_start.items()}
            self.si_path = {k: torch.zeros_like(v) for k, v in self.si_start.items()}

    def after_backward(self, model: nn.Module, step: int) -> None:
        """The hook the training loop calls between ``backward()`` and the optimiser step."""
        self.add_penalty_grad(model)

    def after_step(self, model: nn.Module, step: int) -> None:
        """SI: accumulate the path integral -g . delta theta (g: the step's gradient, still in ``p.grad``)."""
        if self.kind != "si":
            return
        for k, p in model.named_parameters():
            now = p.detach()
            if p.grad is not None:
                self.si_path[k] -= p.grad * (now - self.si_prev[k])
            self.si_prev[k] = now.clone()

    def end_task(self, model: nn.Module, x_task: Tensor, gen: torch.Generator) -> None:
        """Fold the task just learned into the penalty (``x_task``: its training inputs, for the Fisher)."""
        theta = {k: p.detach().clone() for k, p in model.named_parameters()}
        if self.kind == "si":
            for k in theta:
                omega = self.si_path[k].clamp_min(0) / ((theta[k] - self.si_start[k]) ** 2 + self.cfg.si_xi)
                self.importance[k] = self.importance.get(k, torch.zeros_like(omega)) + omega
            self.anchor = theta
            return
        idx = torch.randperm(len(x_task), generator=gen)[: self.cfg.fisher_samples]
        if self.cfg.fisher_method == "closed_form":  # never at the default ("per_sample"): the full preset
            fisher = diagonal_fisher_closed_form(model, x_task[idx], gen)
        else:
            fisher = diagonal_fisher(model, x_task[idx], gen)
        if self.kind == "online_ewc":
            old = self.importance or {k: torch.zeros_like(v) for k, v in fisher.items()}
            self.importance = {k: self.cfg.online_gamma * old[k] + fisher[k] for k in fisher}
            self.anchor = theta
            return
        for k, f in fisher.items():  # separate EWC: merge into A and the precision-weighted anchor m
            a_old = self.importance.get(k, torch.zeros_like(f))
            m_old = self.anchor.get(k, torch.zeros_like(f))
            a_new = a_old + f
            self.anchor[k] = torch.where(
                a_new > 0, (a_old * m_old + f * theta[k]) / a_new.clamp_min(1e-30), theta[k]
            )
            self.importance[k] = a_new
