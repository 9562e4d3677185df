"""Fits a linear model y = X·w + b with gradient descent on synthetic data and reports the fit."""

import numpy as np

rng = np.random.default_rng(42)
n, d = 2000, 5
true_w = np.array([1.5, -2.0, 0.5, 3.0, -1.0])
true_b = 0.7
X = rng.normal(size=(n, d))
y = X @ true_w + true_b + rng.normal(scale=0.1, size=n)

w = np.zeros(d)
b = 0.0
lr = 0.1
for epoch in range(200):
    err = X @ w + b - y
    w -= lr * (X.T @ err) / n
    b -= lr * err.mean()

mse = float(np.mean((X @ w + b - y) ** 2))
print(f"numpy {np.__version__}: trained on {n} samples")
print("weights:", np.round(w, 3).tolist(), "bias:", round(b, 3))
print(f"mse: {mse:.4f}")
