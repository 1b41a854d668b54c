"""The reference implementations the benchmark measures us against.

- `OrmRecorder`: a faithful minimal copy of the exercise's approach: SQLAlchemy's
  ORM over three tables (artifacts, executions, events), a commit after every insert.
- `RawMlmd`: MLMD called directly, as a user without this package would: six
  separate calls per run, or one `put_execution`; `put_lineage_subgraph` for bulk.
- `exercise_script`: the exercise's demo job as one script (pandas, scikit-learn,
  joblib, matplotlib and the ORM), for the end-to-end comparison.
"""

from __future__ import annotations

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb


class OrmRecorder:
    """Three tables and a commit per row, as the exercise recorded its runs."""

    def __init__(self, path: str) -> None:
        from sqlalchemy import Column, ForeignKey, Integer, String, create_engine
        from sqlalchemy.orm import Session, declarative_base

        Base = declarative_base()

        class Artifact(Base):
            __tablename__ = "artifacts"
            id = Column(Integer, primary_key=True)
            type = Column(String)
            uri = Column(String)
            version = Column(Integer)

        class Execution(Base):
            __tablename__ = "executions"
            id = Column(Integer, primary_key=True)
            type = Column(String)
            state = Column(String)
            experiment = Column(String)

        class Event(Base):
            __tablename__ = "events"
            id = Column(Integer, primary_key=True)
            artifact_id = Column(Integer, ForeignKey("artifacts.id"))
            execution_id = Column(Integer, ForeignKey("executions.id"))
            type = Column(String)

        self.Artifact, self.Execution, self.Event = Artifact, Execution, Event
        engine = create_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine)
        self.session = Session(engine)

    def _add(self, row):
        self.session.add(row)
        self.session.commit()
        return row

    def record_run(self, i: int) -> None:
        data = self._add(self.Artifact(type="DataSet", uri=f"file:///data/{i}.csv", version=1))
        run = self._add(self.Execution(type="Trainer", state="RUNNING", experiment="bench"))
        self._add(self.Event(artifact_id=data.id, execution_id=run.id, type="INPUT"))
        model = self._add(self.Artifact(type="SavedModel", uri=f"file:///models/{i}.joblib", version=1))
        self._add(self.Event(artifact_id=model.id, execution_id=run.id, type="OUTPUT"))
        run.state = "COMPLETE"
        self.session.commit()


class RawMlmd:
    """MLMD's own calls, with the types registered once."""

    def __init__(self, path: str) -> None:
        config = pb.ConnectionConfig()
        config.sqlite.filename_uri = path
        config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = metadata_store.MetadataStore(config)
        dataset = pb.ArtifactType(name="DataSet")
        dataset.properties["version"] = pb.INT
        model = pb.ArtifactType(name="SavedModel")
        model.properties["version"] = pb.INT
        trainer = pb.ExecutionType(name="Trainer")
        self.dataset = self.store.put_artifact_type(dataset)
        self.model = self.store.put_artifact_type(model)
        self.trainer = self.store.put_execution_type(trainer)
        self.experiment = self.store.put_context_type(pb.ContextType(name="Experiment"))
        [self.context_id] = self.store.put_contexts([pb.Context(type_id=self.experiment, name="bench")])

    def _artifact(self, type_id: int, uri: str) -> pb.Artifact:
        a = pb.Artifact(type_id=type_id, uri=uri, state=pb.Artifact.LIVE)
        a.properties["version"].int_value = 1
        return a

    @staticmethod
    def _event(kind, artifact_id=0, execution_id=0) -> pb.Event:
        e = pb.Event(type=kind)
        if artifact_id:
            e.artifact_id = artifact_id
        if execution_id:
            e.execution_id = execution_id
        return e

    def record_run_six_calls(self, i: int) -> None:
        s = self.store
        [data] = s.put_artifacts([self._artifact(self.dataset, f"file:///data/{i}.csv")])
        run = pb.Execution(type_id=self.trainer, last_known_state=pb.Execution.RUNNING)
        [run.id] = s.put_executions([run])
        s.put_events([self._event(pb.Event.INPUT, data, run.id)])
        [model] = s.put_artifacts([self._artifact(self.model, f"file:///models/{i}.joblib")])
        s.put_events([self._event(pb.Event.OUTPUT, model, run.id)])
        run.last_known_state = pb.Execution.COMPLETE
        s.put_executions([run])
        s.put_attributions_and_associations(
            [pb.Attribution(artifact_id=a, context_id=self.context_id) for a in (data, model)],
            [pb.Association(execution_id=run.id, context_id=self.context_id)])

    def record_run_one_call(self, i: int) -> None:
        run = pb.Execution(type_id=self.trainer, last_known_state=pb.Execution.COMPLETE)
        self.store.put_execution(
            run,
            [(self._artifact(self.dataset, f"file:///data/{i}.csv"), self._event(pb.Event.INPUT)),
             (self._artifact(self.model, f"file:///models/{i}.joblib"), self._event(pb.Event.OUTPUT))],
            [pb.Context(id=self.context_id)], force_reuse_context=True)

    def record_runs_bulk(self, start: int, count: int) -> None:
        executions, artifacts, edges = [], [], []
        for n, i in enumerate(range(start, start + count)):
            executions.append(pb.Execution(type_id=self.trainer, last_known_state=pb.Execution.COMPLETE))
            artifacts += [self._artifact(self.dataset, f"file:///data/{i}.csv"),
                          self._artifact(self.model, f"file:///models/{i}.joblib")]
            edges += [(n, 2 * n, self._event(pb.Event.INPUT)), (n, 2 * n + 1, self._event(pb.Event.OUTPUT))]
        context = self.store.get_contexts_by_id([self.context_id])[0]
        self.store.put_lineage_subgraph(executions, artifacts, [context], edges)


EXERCISE_SCRIPT = r'''
import sys, os
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import joblib
from sklearn.linear_model import LogisticRegression
sys.path.insert(0, os.environ["BENCH_DIR"])
from reference import OrmRecorder

os.makedirs("data", exist_ok=True)
os.makedirs("models", exist_ok=True)
df = pd.DataFrame({"feature1": range(10), "feature2": [2 * x for x in range(10)],
                   "label": [i % 2 for i in range(10)]})
df.to_csv("data/train_dataset.csv", index=False)
orm = OrmRecorder("metadata.db")
model = LogisticRegression().fit(df[["feature1", "feature2"]], df["label"])
joblib.dump(model, "models/trained_model.joblib")
orm.record_run(0)
states = {}
for e in orm.session.query(orm.Execution).all():
    states[e.state] = states.get(e.state, 0) + 1
plt.bar(list(states), list(states.values()))
plt.title("Executions by state")
plt.savefig("execution_states.png")
print(states)
'''
