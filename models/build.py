#!/usr/bin/python3
"""Build the bundled inferq models, their model cards and the parity fixtures.

Run from the repository root with Debian's Python (needs scikit-learn, onnx, numpy):

    /usr/bin/python3 models/build.py

Everything is trained from scikit-learn's bundled (offline) copies of the data sets with
fixed random seeds, and every output is overwritten, so re-running reproduces the same
files. ONNX graphs are written by hand with onnx.helper (opset 17, IR version 8) from the
trained estimators' weights; no skl2onnx is needed.

Outputs:
  models/<name>/<version>/model.onnx, model.json
  test/fixtures/parity/<name>-<version>.json      (25 held-out rows + reference outputs)
  test/fixtures/models/...                        (fault-test model repository)
"""

import json
import os
import shutil
import sys
import time
import warnings

import numpy as np
import onnx
import sklearn
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, mean_absolute_error, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
FIXTURES = os.path.join(ROOT, "test", "fixtures")
PARITY = os.path.join(FIXTURES, "parity")
TEST_MODELS = os.path.join(FIXTURES, "models")

SEED = 42
OPSET = 17
IR_VERSION = 8
PARITY_ROWS = 25
BATCHING = {"maxBatchSize": 64, "maxBatchDelayMs": 2}
FRAMEWORK_SKLEARN = f"scikit-learn {sklearn.__version__}"
FRAMEWORK_NUMPY = f"numpy {np.__version__}"
SPLIT = "80/20 stratified, random_state=42"

# A ConvergenceWarning means a model is under-trained: fail the build instead.
warnings.simplefilter("error", ConvergenceWarning)


# --------------------------------------------------------------------------- helpers


def f32(a):
    """Round to float32 and back: values exactly representable as ONNX float32 input."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def init(name, array, dtype=np.float32):
    return numpy_helper.from_array(np.ascontiguousarray(np.asarray(array, dtype=dtype)), name)


def make_model(name, nodes, inputs, outputs, initializers, doc):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=initializers)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="inferq models/build.py",
        producer_version="1",
        doc_string=doc,
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def tensor_in(name, *shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape])


def classifier_outputs(n_classes):
    return [
        helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", n_classes]),
    ]


def argmax_label_node():
    return helper.make_node(
        "ArgMax", ["probabilities"], ["label"], name="label", axis=1, keepdims=0
    )


def dump_json(value, indent=0, used=0, width=100):
    """JSON in the layout prettier (printWidth 100) produces, so `prettier --check` passes:
    objects always expanded, arrays inline when they fit on the line, else one item a line.
    `used` is how many characters already precede the value on its line."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = []
        for k, v in value.items():
            head = f"{pad}  {json.dumps(k)}: "
            items.append(head + dump_json(v, indent + 1, len(head), width))
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, (list, tuple)):
        inline = "[" + ", ".join(json.dumps(v) for v in value) + "]"
        scalars = all(not isinstance(v, (dict, list, tuple)) for v in value)
        if scalars and used + len(inline) + 1 <= width:
            return inline
        items = [f"{pad}  " + dump_json(v, indent + 1, len(pad) + 2, width) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value)


def write_json(path, value, pretty=True):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if pretty:
            f.write(dump_json(value) + "\n")
        else:
            json.dump(value, f)
            f.write("\n")


def write_version(name, version, model, meta, parity=None):
    folder = os.path.join(MODELS, name, version)
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    write_json(os.path.join(folder, "model.json"), meta)
    if parity is not None:
        fixture = {"model": name, "version": version}
        fixture.update(parity)
        write_json(os.path.join(PARITY, f"{name}-{version}.json"), fixture, pretty=False)
    size = os.path.getsize(os.path.join(folder, "model.onnx"))
    card = meta["card"]
    score = {k: card[k] for k in ("heldOutAccuracy", "heldOutR2", "heldOutMAE") if k in card}
    print(f"  wrote models/{name}/{version}  ({size} bytes)  {score}")


def card(dataset, source, train_rows, test_rows, framework, algorithm, split=SPLIT, **scores):
    c = {
        "dataset": dataset,
        "source": source,
        "split": split,
        "trainRows": int(train_rows),
        "testRows": int(test_rows),
    }
    c.update({k: round(float(v), 4) for k, v in scores.items()})
    c.update({"framework": framework, "algorithm": algorithm, "builtBy": "models/build.py"})
    return c


def proba_fixture(rows, proba, labels):
    return {
        "rows": np.asarray(rows, dtype=np.float64).tolist(),
        "probabilities": np.asarray(proba, dtype=np.float64).tolist(),
        "labels": [int(v) for v in labels],
    }


# --------------------------------------------------------------------------- data


def breast_cancer_split():
    data = load_breast_cancer()
    X = f32(data.data)  # what the service will actually see: float32 inputs
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, data.target, test_size=0.2, stratify=data.target, random_state=SEED
    )
    return data, X_tr, X_te, y_tr, y_te


def digits_split():
    data = load_digits()
    X = f32(data.data)  # pixel values 0..16 (integers, exact in float32)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, data.target, test_size=0.2, stratify=data.target, random_state=SEED
    )
    return data, X_tr, X_te, y_tr, y_te


BC_SOURCE = (
    "scikit-learn bundled copy of the UCI Breast Cancer Wisconsin (Diagnostic) data set"
)
DIGITS_SOURCE = (
    "scikit-learn bundled copy of the UCI Optical Recognition of Handwritten Digits "
    "data set (8x8 test set)"
)
DIABETES_SOURCE = (
    "scikit-learn bundled copy of the Efron et al. (2004) diabetes data set "
    "(Least Angle Regression)"
)


# --------------------------------------------------------------------------- graph pieces


def scaler_nodes(scaler, prefix="scale"):
    """(x - mean) / scale, exactly as StandardScaler.transform computes it."""
    inits = [init(f"{prefix}_mean", scaler.mean_[None, :]), init(f"{prefix}_std", scaler.scale_[None, :])]
    nodes = [
        helper.make_node("Sub", ["input", f"{prefix}_mean"], [f"{prefix}_centered"], name=f"{prefix}_sub"),
        helper.make_node("Div", [f"{prefix}_centered", f"{prefix}_std"], ["x"], name=f"{prefix}_div"),
    ]
    return nodes, inits


def dense_nodes(x, out, W, b, tag, relu):
    inits = [init(f"{tag}_W", W), init(f"{tag}_b", b)]
    gemm_out = f"{tag}_z" if relu else out
    nodes = [helper.make_node("Gemm", [x, f"{tag}_W", f"{tag}_b"], [gemm_out], name=f"{tag}_gemm")]
    if relu:
        nodes.append(helper.make_node("Relu", [gemm_out], [out], name=f"{tag}_relu"))
    return nodes, inits


def binary_logit_as_two_columns(w, b):
    """A binary model's single logit z becomes the pair [0, z]; Softmax([0, z]) is exactly
    [1 - sigmoid(z), sigmoid(z)], i.e. predict_proba's column order [class 0, class 1]."""
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    b = float(np.asarray(b).reshape(-1)[0])
    W2 = np.stack([np.zeros_like(w), w], axis=1)
    b2 = np.array([0.0, b])
    return W2, b2


# --------------------------------------------------------------------------- models


def build_breast_cancer_logreg():
    data, X_tr, X_te, y_tr, y_te = breast_cancer_split()
    scaler = StandardScaler().fit(X_tr)
    clf = LogisticRegression(max_iter=1000, random_state=SEED).fit(scaler.transform(X_tr), y_tr)
    acc = accuracy_score(y_te, clf.predict(scaler.transform(X_te)))

    nodes, inits = scaler_nodes(scaler)
    W2, b2 = binary_logit_as_two_columns(clf.coef_[0], clf.intercept_)
    n, i = dense_nodes("x", "logits", W2, b2, "logreg", relu=False)
    nodes += n + [
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
        argmax_label_node(),
    ]
    inits += i
    model = make_model(
        "breast_cancer_logreg",
        nodes,
        [tensor_in("input", 30)],
        classifier_outputs(2),
        inits,
        "StandardScaler + LogisticRegression on the Breast Cancer Wisconsin (Diagnostic) data.",
    )
    rows = X_te[:PARITY_ROWS]
    parity = proba_fixture(
        rows, clf.predict_proba(scaler.transform(rows)), clf.predict(scaler.transform(rows))
    )
    meta = {
        "task": "classification",
        "description": "Classifies a breast mass as malignant or benign from 30 cell-nucleus "
        "measurements (logistic regression).",
        "labels": list(data.target_names),
        "features": list(data.feature_names),
        "batching": BATCHING,
        "card": card(
            "Breast Cancer Wisconsin (Diagnostic)",
            BC_SOURCE,
            len(X_tr),
            len(X_te),
            FRAMEWORK_SKLEARN,
            "StandardScaler + LogisticRegression (L2, C=1.0, lbfgs)",
            heldOutAccuracy=acc,
        ),
    }
    write_version("breast-cancer", "1.0.0", model, meta, parity)


def mlp_graph_nodes(clf, binary):
    """Hidden Gemm+Relu layers then an output Gemm into `logits`."""
    nodes, inits = [], []
    x = "x"
    n_layers = len(clf.coefs_)
    for k, (W, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        last = k == n_layers - 1
        out = "logits" if last else f"h{k + 1}"
        if last and binary:
            W, b = binary_logit_as_two_columns(W[:, 0], b)
        n, i = dense_nodes(x, out, W, b, f"layer{k + 1}", relu=not last)
        nodes += n
        inits += i
        x = out
    nodes += [
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
        argmax_label_node(),
    ]
    return nodes, inits


def build_breast_cancer_mlp():
    data, X_tr, X_te, y_tr, y_te = breast_cancer_split()
    scaler = StandardScaler().fit(X_tr)
    clf = MLPClassifier(
        hidden_layer_sizes=(32,),
        activation="relu",
        alpha=3.0,  # picked by 5-fold CV on the training split (tried 1e-4 .. 10)
        max_iter=2000,
        random_state=SEED,
    ).fit(scaler.transform(X_tr), y_tr)
    assert clf.out_activation_ == "logistic"
    acc = accuracy_score(y_te, clf.predict(scaler.transform(X_te)))

    nodes, inits = scaler_nodes(scaler)
    n, i = mlp_graph_nodes(clf, binary=True)
    model = make_model(
        "breast_cancer_mlp",
        nodes + n,
        [tensor_in("input", 30)],
        classifier_outputs(2),
        inits + i,
        "StandardScaler + MLPClassifier(32, relu) on the Breast Cancer Wisconsin (Diagnostic) data.",
    )
    rows = X_te[:PARITY_ROWS]
    parity = proba_fixture(
        rows, clf.predict_proba(scaler.transform(rows)), clf.predict(scaler.transform(rows))
    )
    meta = {
        "task": "classification",
        "description": "Classifies a breast mass as malignant or benign from 30 cell-nucleus "
        "measurements (one-hidden-layer MLP).",
        "labels": list(data.target_names),
        "features": list(data.feature_names),
        "batching": BATCHING,
        "card": card(
            "Breast Cancer Wisconsin (Diagnostic)",
            BC_SOURCE,
            len(X_tr),
            len(X_te),
            FRAMEWORK_SKLEARN,
            f"StandardScaler + MLPClassifier(hidden_layer_sizes=(32,), relu, adam, alpha=3.0 "
            f"chosen by 5-fold CV on the training split; {clf.n_iter_} epochs)",
            heldOutAccuracy=acc,
        ),
    }
    write_version("breast-cancer", "1.1.0", model, meta, parity)


def build_digits_mlp():
    data, X_tr, X_te, y_tr, y_te = digits_split()
    clf = MLPClassifier(
        hidden_layer_sizes=(256, 256),
        activation="relu",
        alpha=1e-4,
        max_iter=500,
        random_state=SEED,
    ).fit(X_tr / 16.0, y_tr)
    acc = accuracy_score(y_te, clf.predict(X_te / 16.0))

    nodes = [helper.make_node("Mul", ["input", "pixel_scale"], ["x"], name="scale_pixels")]
    inits = [init("pixel_scale", np.array(1.0 / 16.0))]
    n, i = mlp_graph_nodes(clf, binary=False)
    model = make_model(
        "digits_mlp",
        nodes + n,
        [tensor_in("input", 64)],
        classifier_outputs(10),
        inits + i,
        "MLPClassifier(256, 256, relu) on the 8x8 handwritten digits; pixels (0..16) scaled by 1/16 "
        "in the graph.",
    )
    rows = X_te[:PARITY_ROWS]
    parity = proba_fixture(rows, clf.predict_proba(rows / 16.0), clf.predict(rows / 16.0))
    meta = {
        "task": "classification",
        "description": "Recognises a handwritten digit from a flattened 8x8 image of pixel "
        "intensities 0..16 (two-hidden-layer MLP).",
        "labels": [str(d) for d in range(10)],
        "features": list(data.feature_names),
        "batching": BATCHING,
        "card": card(
            "Optical Recognition of Handwritten Digits (8x8)",
            DIGITS_SOURCE,
            len(X_tr),
            len(X_te),
            FRAMEWORK_SKLEARN,
            f"pixels / 16 + MLPClassifier(hidden_layer_sizes=(256, 256), relu, adam, "
            f"alpha=1e-4; {clf.n_iter_} epochs)",
            heldOutAccuracy=acc,
        ),
    }
    write_version("digits", "1.0.0", model, meta, parity)


def build_diabetes():
    data = load_diabetes()
    X = f32(data.data)  # the bundled, already mean-centred and scaled features
    X_tr, X_te, y_tr, y_te = train_test_split(X, data.target, test_size=0.2, random_state=SEED)
    reg = LinearRegression().fit(X_tr, y_tr)
    pred = reg.predict(X_te)
    r2 = r2_score(y_te, pred)
    mae = mean_absolute_error(y_te, pred)

    # Targets are ~25..346, where one float32 ulp is up to 3e-5; computing the dot product in
    # float64 inside the graph keeps the only error the final rounding to the float32 output.
    nodes = [
        helper.make_node("Cast", ["input"], ["x64"], name="to_double", to=TensorProto.DOUBLE),
        helper.make_node("Gemm", ["x64", "coef", "intercept"], ["y64"], name="linear"),
        helper.make_node("Cast", ["y64"], ["prediction"], name="to_float", to=TensorProto.FLOAT),
    ]
    inits = [
        init("coef", reg.coef_.reshape(-1, 1), np.float64),
        init("intercept", np.array([reg.intercept_]), np.float64),
    ]
    model = make_model(
        "diabetes_linear",
        nodes,
        [tensor_in("input", 10)],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N", 1])],
        inits,
        "LinearRegression on the diabetes data set: one-year disease progression.",
    )
    rows = X_te[:PARITY_ROWS]
    parity = {
        "rows": rows.tolist(),
        "predictions": [float(v) for v in reg.predict(rows)],
    }
    meta = {
        "task": "regression",
        "description": "Predicts a quantitative measure of diabetes progression one year after "
        "baseline from 10 (mean-centred, scaled) baseline variables.",
        "features": list(data.feature_names),
        "batching": BATCHING,
        "card": card(
            "Diabetes (Efron et al., 2004)",
            DIABETES_SOURCE,
            len(X_tr),
            len(X_te),
            FRAMEWORK_SKLEARN,
            "LinearRegression (ordinary least squares)",
            split="80/20 random (not stratified: regression), random_state=42",
            heldOutR2=r2,
            heldOutMAE=mae,
        ),
    }
    write_version("diabetes", "1.0.0", model, meta, parity)


# --------------------------------------------------------------------------- numpy CNN

CNN_CHANNELS = 16
CNN_EPOCHS = 40
CNN_BATCH = 32
CNN_LR = 3e-3
CNN_WEIGHT_DECAY = 1e-4


def im2col_3x3(x):
    """x [N, 1, 8, 8] -> patches [N, 64, 9], zero padding 1, patch order (ky, kx)."""
    n = x.shape[0]
    xp = np.pad(x[:, 0], ((0, 0), (1, 1), (1, 1)))
    cols = np.empty((n, 8, 8, 9), dtype=x.dtype)
    for ky in range(3):
        for kx in range(3):
            cols[:, :, :, ky * 3 + kx] = xp[:, ky : ky + 8, kx : kx + 8]
    return cols.reshape(n, 64, 9)


def cnn_forward(params, x, cache=False):
    """x: [N, 1, 8, 8] already scaled to 0..1. Conv3x3(pad 1) -> Relu -> MaxPool2x2 ->
    Flatten (NCHW order, as ONNX Flatten) -> Gemm -> Softmax."""
    Wc, bc, Wd, bd = params["Wc"], params["bc"], params["Wd"], params["bd"]
    C = Wc.shape[0]
    n = x.shape[0]
    cols = im2col_3x3(x)  # [N, 64, 9]
    conv = cols @ Wc.reshape(C, 9).T + bc  # [N, 64, C]
    conv = conv.transpose(0, 2, 1).reshape(n, C, 8, 8)
    act = np.maximum(conv, 0.0)
    blocks = act.reshape(n, C, 4, 2, 4, 2)
    pooled = blocks.max(axis=(3, 5))  # [N, C, 4, 4]
    flat = pooled.reshape(n, -1)
    logits = flat @ Wd + bd
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    proba = e / e.sum(axis=1, keepdims=True)
    if cache:
        return proba, (cols, conv, blocks, pooled, flat)
    return proba


def cnn_backward(params, proba, y, cache):
    cols, conv, blocks, pooled, flat = cache
    Wd = params["Wd"]
    n, C = conv.shape[0], conv.shape[1]
    d_logits = proba.copy()
    d_logits[np.arange(n), y] -= 1.0
    d_logits /= n
    grads = {"Wd": flat.T @ d_logits, "bd": d_logits.sum(axis=0)}
    d_pooled = (d_logits @ Wd.T).reshape(n, C, 4, 1, 4, 1)
    # Route the pooled gradient to the max of each 2x2 window (split evenly on exact ties).
    mask = blocks == pooled[:, :, :, None, :, None]
    mask = mask / mask.sum(axis=(3, 5), keepdims=True)
    d_act = (mask * d_pooled).reshape(n, C, 8, 8)
    d_conv = d_act * (conv > 0)
    d_conv = d_conv.reshape(n, C, 64).transpose(0, 2, 1)  # [N, 64, C]
    grads["Wc"] = np.einsum("npc,npk->ck", d_conv, cols).reshape(C, 1, 3, 3)
    grads["bc"] = d_conv.sum(axis=(0, 1))
    return grads


def train_cnn(X_tr, y_tr):
    rng = np.random.default_rng(SEED)
    C = CNN_CHANNELS
    params = {
        "Wc": rng.normal(0.0, np.sqrt(2.0 / 9), size=(C, 1, 3, 3)),
        "bc": np.zeros(C),
        "Wd": rng.normal(0.0, np.sqrt(1.0 / (C * 16)), size=(C * 16, 10)),
        "bd": np.zeros(10),
    }
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = 0
    n = len(X_tr)
    for epoch in range(CNN_EPOCHS):
        lr = CNN_LR * 0.5 * (1 + np.cos(np.pi * epoch / CNN_EPOCHS))  # cosine decay
        order = rng.permutation(n)
        for start in range(0, n, CNN_BATCH):
            idx = order[start : start + CNN_BATCH]
            proba, cache = cnn_forward(params, X_tr[idx], cache=True)
            grads = cnn_backward(params, proba, y_tr[idx], cache)
            t += 1
            for k in params:
                g = grads[k]
                if k in ("Wc", "Wd"):
                    g = g + CNN_WEIGHT_DECAY * params[k]
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                mhat = m[k] / (1 - b1**t)
                vhat = v[k] / (1 - b2**t)
                params[k] = params[k] - lr * mhat / (np.sqrt(vhat) + eps)
    # The ONNX file stores float32 weights: use exactly those for every reported number.
    return {k: f32(p) for k, p in params.items()}


def build_digits_cnn():
    data, X_tr, X_te, y_tr, y_te = digits_split()
    img_tr = X_tr.reshape(-1, 1, 8, 8)
    img_te = X_te.reshape(-1, 1, 8, 8)
    t0 = time.time()
    params = train_cnn(img_tr / 16.0, y_tr)
    secs = time.time() - t0
    proba_te = cnn_forward(params, img_te / 16.0)
    acc = accuracy_score(y_te, proba_te.argmax(axis=1))
    train_acc = accuracy_score(y_tr, cnn_forward(params, img_tr / 16.0).argmax(axis=1))
    print(f"  digits-cnn: trained in {secs:.1f}s, train acc {train_acc:.4f}, test acc {acc:.4f}")

    C = CNN_CHANNELS
    nodes = [
        helper.make_node("Mul", ["image", "pixel_scale"], ["x"], name="scale_pixels"),
        helper.make_node(
            "Conv",
            ["x", "conv_W", "conv_b"],
            ["conv"],
            name="conv3x3",
            kernel_shape=[3, 3],
            pads=[1, 1, 1, 1],
            strides=[1, 1],
        ),
        helper.make_node("Relu", ["conv"], ["conv_relu"], name="relu"),
        helper.make_node(
            "MaxPool", ["conv_relu"], ["pooled"], name="maxpool2x2", kernel_shape=[2, 2], strides=[2, 2]
        ),
        helper.make_node("Flatten", ["pooled"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "dense_W", "dense_b"], ["logits"], name="dense"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=1),
        argmax_label_node(),
    ]
    inits = [
        init("pixel_scale", np.array(1.0 / 16.0)),
        init("conv_W", params["Wc"]),
        init("conv_b", params["bc"]),
        init("dense_W", params["Wd"]),
        init("dense_b", params["bd"]),
    ]
    model = make_model(
        "digits_cnn",
        nodes,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        classifier_outputs(10),
        inits,
        f"Small CNN (Conv3x3x{C} + Relu + MaxPool2x2 + Dense) on 8x8 handwritten digits, "
        "trained with plain numpy; pixels (0..16) scaled by 1/16 in the graph.",
    )
    rows = img_te[:PARITY_ROWS]
    proba = cnn_forward(params, rows / 16.0)
    parity = proba_fixture(rows, proba, proba.argmax(axis=1))
    meta = {
        "task": "classification",
        "description": "Recognises a handwritten digit from an 8x8 single-channel image "
        "[1, 8, 8] of pixel intensities 0..16 (small convolutional network).",
        "labels": [str(d) for d in range(10)],
        "batching": BATCHING,
        "card": card(
            "Optical Recognition of Handwritten Digits (8x8)",
            DIGITS_SOURCE,
            len(X_tr),
            len(X_te),
            FRAMEWORK_NUMPY,
            f"CNN: pixels / 16 -> Conv 3x3 x{C} (pad 1) -> Relu -> MaxPool 2x2 -> Flatten -> "
            f"Dense 10 -> Softmax; Adam (lr {CNN_LR}, cosine decay, weight decay "
            f"{CNN_WEIGHT_DECAY}), batch {CNN_BATCH}, {CNN_EPOCHS} epochs, forward/backward "
            "written in numpy",
            heldOutAccuracy=acc,
        ),
    }
    write_version("digits-cnn", "1.0.0", model, meta, parity)


# --------------------------------------------------------------------------- fault-test models


def build_test_models():
    # Only replace the folders built here; other fixtures in the test repository are kept.
    for name in ("nan-model", "breast-cancer"):
        if os.path.isdir(os.path.join(TEST_MODELS, name)):
            shutil.rmtree(os.path.join(TEST_MODELS, name))

    # nan-model: prediction = sqrt(input[:, 0]) -> NaN whenever input[:, 0] < 0.
    nodes = [
        helper.make_node("Gather", ["input", "col0"], ["x0"], name="column0", axis=1),
        helper.make_node("Sqrt", ["x0"], ["prediction"], name="sqrt"),
    ]
    model = make_model(
        "nan_model",
        nodes,
        [tensor_in("input", 4)],
        [helper.make_tensor_value_info("prediction", TensorProto.FLOAT, ["N", 1])],
        [init("col0", np.array([0]), np.int64)],
        "Fault-test model: prediction = sqrt(input[:, 0]), NaN whenever input[:, 0] < 0.",
    )
    folder = os.path.join(TEST_MODELS, "nan-model", "1.0.0")
    os.makedirs(folder)
    onnx.save(model, os.path.join(folder, "model.onnx"))
    write_json(
        os.path.join(folder, "model.json"),
        {
            "task": "regression",
            "description": "Fault-test model: prediction = sqrt(input[:, 0]), NaN whenever "
            "input[:, 0] < 0 (columns 1..3 are ignored).",
            "features": ["x0", "x1", "x2", "x3"],
            "batching": BATCHING,
            "card": {
                "dataset": "none (hand-written graph)",
                "source": "test fixture",
                "algorithm": "Gather column 0 -> Sqrt",
                "builtBy": "models/build.py",
            },
        },
    )
    print("  wrote test/fixtures/models/nan-model/1.0.0")

    shutil.copytree(
        os.path.join(MODELS, "breast-cancer", "1.0.0"),
        os.path.join(TEST_MODELS, "breast-cancer", "1.0.0"),
    )
    print("  wrote test/fixtures/models/breast-cancer/1.0.0 (copy of models/breast-cancer/1.0.0)")


def main():
    if sys.version_info < (3, 8):
        raise SystemExit("python >= 3.8 required")
    os.makedirs(PARITY, exist_ok=True)
    print(f"building inferq models with {FRAMEWORK_SKLEARN}, onnx {onnx.__version__}, {FRAMEWORK_NUMPY}")
    build_breast_cancer_logreg()
    build_breast_cancer_mlp()
    build_digits_mlp()
    build_diabetes()
    build_digits_cnn()
    build_test_models()


if __name__ == "__main__":
    main()
