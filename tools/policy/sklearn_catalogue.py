"""Fitted scikit-learn estimators of every family, on a tiny data set (a catalogue builder)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _data() -> tuple[Any, Any, Any]:
    import numpy as np

    rng = np.random.RandomState(0)
    features = rng.rand(40, 4)
    classes = (features[:, 0] + features[:, 1] > 1).astype(int)
    return features, classes, features @ np.array([1.0, 2.0, 0.5, 3.0])


def _classifiers() -> list[Any]:
    from sklearn import (
        calibration,
        discriminant_analysis,
        ensemble,
        linear_model,
        naive_bayes,
        neighbors,
        neural_network,
        svm,
        tree,
    )

    return [
        linear_model.LogisticRegression(), linear_model.SGDClassifier(random_state=0),
        linear_model.RidgeClassifier(), linear_model.Perceptron(),
        tree.DecisionTreeClassifier(random_state=0), tree.ExtraTreeClassifier(random_state=0),
        ensemble.RandomForestClassifier(n_estimators=3, random_state=0),
        ensemble.ExtraTreesClassifier(n_estimators=3, random_state=0),
        ensemble.GradientBoostingClassifier(n_estimators=3, random_state=0),
        ensemble.HistGradientBoostingClassifier(max_iter=3),
        ensemble.AdaBoostClassifier(n_estimators=3), ensemble.BaggingClassifier(n_estimators=2),
        ensemble.VotingClassifier([("lr", linear_model.LogisticRegression()),
                                   ("nb", naive_bayes.GaussianNB())]),
        ensemble.StackingClassifier([("t", tree.DecisionTreeClassifier())], cv=2),
        svm.SVC(probability=True, random_state=0), svm.LinearSVC(), svm.NuSVC(),
        neighbors.KNeighborsClassifier(3), neighbors.NearestCentroid(),
        neighbors.KNeighborsClassifier(3, algorithm="kd_tree"),
        neighbors.KNeighborsClassifier(3, algorithm="ball_tree"),
        naive_bayes.GaussianNB(), naive_bayes.BernoulliNB(), naive_bayes.MultinomialNB(),
        discriminant_analysis.LinearDiscriminantAnalysis(),
        discriminant_analysis.QuadraticDiscriminantAnalysis(),
        calibration.CalibratedClassifierCV(linear_model.LogisticRegression(), cv=2),
        neural_network.MLPClassifier(hidden_layer_sizes=(3,), max_iter=5, random_state=0),
    ]


def _regressors() -> list[Any]:
    from sklearn import (
        ensemble,
        gaussian_process,
        kernel_ridge,
        linear_model,
        neighbors,
        neural_network,
        svm,
        tree,
    )

    return [
        linear_model.LinearRegression(), linear_model.Ridge(), linear_model.Lasso(),
        linear_model.ElasticNet(), linear_model.SGDRegressor(random_state=0),
        linear_model.HuberRegressor(), linear_model.BayesianRidge(),
        linear_model.QuantileRegressor(alpha=0.0, solver="highs"), linear_model.PoissonRegressor(),
        tree.DecisionTreeRegressor(random_state=0),
        ensemble.RandomForestRegressor(n_estimators=3, random_state=0),
        ensemble.GradientBoostingRegressor(n_estimators=3, random_state=0),
        ensemble.HistGradientBoostingRegressor(max_iter=3),
        ensemble.HistGradientBoostingRegressor(max_iter=3, loss="poisson"),
        svm.SVR(), svm.LinearSVR(), neighbors.KNeighborsRegressor(3),
        neural_network.MLPRegressor(hidden_layer_sizes=(3,), max_iter=5, random_state=0),
        kernel_ridge.KernelRidge(), gaussian_process.GaussianProcessRegressor(),
    ]


def _transformers() -> list[Any]:
    from sklearn import cluster, decomposition, impute, manifold, mixture, neighbors, preprocessing
    from sklearn import feature_selection as fs

    return [
        preprocessing.StandardScaler(), preprocessing.MinMaxScaler(), preprocessing.RobustScaler(),
        preprocessing.PolynomialFeatures(2), preprocessing.QuantileTransformer(n_quantiles=10),
        preprocessing.PowerTransformer(), preprocessing.KBinsDiscretizer(3),
        preprocessing.SplineTransformer(), preprocessing.Normalizer(),
        decomposition.PCA(2), decomposition.TruncatedSVD(2), decomposition.NMF(2, max_iter=20),
        decomposition.FastICA(2, random_state=0), decomposition.KernelPCA(2),
        cluster.KMeans(2, n_init=1, random_state=0), cluster.MiniBatchKMeans(2, n_init=1),
        cluster.DBSCAN(), cluster.AgglomerativeClustering(2), cluster.Birch(n_clusters=2),
        mixture.GaussianMixture(2, random_state=0), mixture.BayesianGaussianMixture(n_components=2),
        neighbors.NearestNeighbors(n_neighbors=2), neighbors.KernelDensity(),
        manifold.Isomap(n_neighbors=5, n_components=2), impute.SimpleImputer(),
        impute.KNNImputer(), fs.SelectKBest(k=2), fs.VarianceThreshold(),
    ]


def _fit_all(estimators: list[Any], features: Any, target: Any) -> list[Any]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [estimator.fit(features, target) for estimator in estimators]


def _composites(features: Any, classes: Any) -> Iterator[tuple[str, Any]]:
    import numpy as np
    import pandas as pd
    from sklearn import compose, impute, linear_model, pipeline, preprocessing
    from sklearn.feature_extraction import DictVectorizer, text

    frame = pd.DataFrame({"num": features[:, 0], "cat": np.where(classes, "a", "b")})
    column = compose.ColumnTransformer([
        ("num", pipeline.make_pipeline(impute.SimpleImputer(), preprocessing.StandardScaler()),
         ["num"]),
        ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["cat"]),
    ])
    full = pipeline.Pipeline([("prep", column), ("clf", linear_model.LogisticRegression())])
    yield ("pipeline-columntransformer", full.fit(frame, classes))
    union = pipeline.make_union(preprocessing.StandardScaler(), preprocessing.MinMaxScaler())
    yield ("feature-union", union.fit(features))
    encoders = [preprocessing.OrdinalEncoder(), preprocessing.OneHotEncoder(),
                preprocessing.TargetEncoder()]
    yield ("encoders", [e.fit(frame[["cat"]], classes) for e in encoders])
    yield ("label-tools", [preprocessing.LabelEncoder().fit(["x", "y"]),
                           preprocessing.LabelBinarizer().fit([1, 2, 3])])
    docs = ["the cat sat", "the dog ran", "a cat ran fast"]
    vectorizers = [text.CountVectorizer(), text.TfidfVectorizer(ngram_range=(1, 2)),
                   text.HashingVectorizer(n_features=16), text.TfidfTransformer()]
    yield ("text", [v.fit(docs if not isinstance(v, text.TfidfTransformer)
                          else text.CountVectorizer().fit_transform(docs)) for v in vectorizers])
    yield ("dictvectorizer", DictVectorizer().fit([{"a": 1}, {"b": 2}]))
    grid = __import__("sklearn.model_selection", fromlist=["GridSearchCV"]).GridSearchCV(
        linear_model.Ridge(), {"alpha": [0.1, 1.0]}, cv=2)
    yield ("grid-search", grid.fit(features, classes))


def fitted_estimators() -> Iterator[tuple[str, Any]]:
    """(label, fitted estimator) for each family; composites and text vectorizers included.

    Labels are unique (a second estimator of the same class gets a numbered label)."""
    seen: dict[str, int] = {}
    for label, estimator in _all_fitted():
        seen[label] = seen.get(label, 0) + 1
        yield (label if seen[label] == 1 else f"{label}-{seen[label]}", estimator)


def _all_fitted() -> Iterator[tuple[str, Any]]:
    from sklearn.isotonic import IsotonicRegression
    from sklearn.neighbors import BallTree, KDTree

    features, classes, values = _data()
    for estimator in _fit_all(_classifiers(), features, classes):
        yield (f"clf-{type(estimator).__name__}", estimator)
    for estimator in _fit_all(_regressors(), features, values):
        yield (f"reg-{type(estimator).__name__}", estimator)
    fitted = _fit_all(_transformers(), features - features.min() + 0.1, classes)
    for estimator in fitted:
        yield (f"tf-{type(estimator).__name__}", estimator)
    yield ("trees", [KDTree(features), BallTree(features), BallTree(features[:, :2],
                                                                     metric="haversine")])
    yield ("isotonic", IsotonicRegression().fit(features[:, 0], values))
    yield from _composites(features, classes)
