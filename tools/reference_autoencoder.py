"""Reference values for typednet's autoencoder penalties (tests/autoencoder.rs).

Run with a throwaway venv holding torch 2.15 (never a dependency of typednet):

    /tmp/ref/bin/python tools/reference_autoencoder.py > tests/fixtures/autoencoder.txt

Writes named arrays, one `name v v v ...` line each, all in float64:
- a one-layer encoder h = phi(W x + b) with W [3, 4], b [3] and a batch x [2, 4];
- for phi = sigmoid and tanh: the contractive penalty lam * mean_b ||dh/dx||_F^2, computed from
  the Jacobian that torch.autograd.functional.jacobian gives (not from the closed form the
  library uses), and its gradients with respect to W, b and x (double backpropagation);
- the sparsity penalty lam * mean_b sum_j |z_j| of the sigmoid codes, and its gradient w.r.t. W.
"""

import torch

torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(7)
W = torch.randn(3, 4, generator=gen) * 0.8
b = torch.randn(3, generator=gen) * 0.5
x = torch.rand(2, 4, generator=gen) * 2 - 1
lam = 0.7


def line(name, t):
    values = t.detach().reshape(-1).tolist()
    print(name, " ".join(repr(float(v)) for v in values))


print("# tools/reference_autoencoder.py, torch", torch.__version__)
line("weight", W)
line("bias", b)
line("x", x)
line("strength", torch.tensor([lam]))

for name, phi in [("sigmoid", torch.sigmoid), ("tanh", torch.tanh)]:
    Wp = W.clone().requires_grad_(True)
    bp = b.clone().requires_grad_(True)
    xp = x.clone().requires_grad_(True)
    total = 0.0
    for i in range(x.shape[0]):
        # create_graph: the Jacobian is itself differentiable in W, b and x.
        J = torch.autograd.functional.jacobian(
            lambda v: phi(Wp @ v + bp), xp[i], create_graph=True
        )
        total = total + (J ** 2).sum()
    penalty = lam * total / x.shape[0]
    penalty.backward()
    line(f"{name}_contractive", penalty)
    line(f"{name}_contractive_grad_weight", Wp.grad)
    line(f"{name}_contractive_grad_bias", bp.grad)
    line(f"{name}_contractive_grad_x", xp.grad)

Wp = W.clone().requires_grad_(True)
z = torch.sigmoid(x @ Wp.T + b)
sparsity = lam * z.abs().sum(dim=1).mean()
sparsity.backward()
line("sparsity", sparsity)
line("sparsity_grad_weight", Wp.grad)

# The VAE's terms: z = mu + exp(logvar / 2) * eps, KL(N(mu, sigma^2) || N(0, I)) averaged over
# the batch, and the gradients of L = sum(z * g) + kl; the Bernoulli NLL from logits (summed
# over pixels, averaged over the batch) against grey targets, and its gradient.
mu = (torch.randn(3, 4, generator=gen) * 0.7).requires_grad_(True)
logvar = (torch.randn(3, 4, generator=gen) * 0.5).requires_grad_(True)
eps = torch.randn(3, 4, generator=gen)
g = torch.randn(3, 4, generator=gen)
z = mu + torch.exp(0.5 * logvar) * eps
kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1).mean()
(torch.sum(z * g) + kl).backward()
line("vae_mean", mu)
line("vae_log_variance", logvar)
line("vae_noise", eps)
line("vae_code_weights", g)
line("vae_code", z)
line("vae_kl", kl)
line("vae_grad_mean", mu.grad)
line("vae_grad_log_variance", logvar.grad)

logits = (torch.randn(3, 5, generator=gen) * 2).requires_grad_(True)
targets = torch.rand(3, 5, generator=gen)
nll = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / 3
nll.backward()
line("bernoulli_logits", logits)
line("bernoulli_targets", targets)
line("bernoulli_nll", nll)
line("bernoulli_grad_logits", logits.grad)
