"""Names resolved once per store: type ids and specs, experiments and other contexts.

Writing, reading, counting and bulk import all look a type or a context up by name
here, and nowhere else. What is found is cached for the store's life: ids never change
in MLMD. A type is registered only by writers (`register`, `spec`, `spec_id`: under the
store's write lock, taken here when something is to be written), and only when it is
missing or one of ours from an older version; readers only look.
"""

from __future__ import annotations

from typing import Any, ContextManager, Dict, Iterable, List, Optional, Sequence, Tuple

from mlmd_exercise import schema
from mlmd_exercise.errors import MlmdExerciseError, NotFoundError, SchemaError, StoreError
from mlmd_exercise.records import DEFAULT_EXPERIMENT, ContextRecord, Kind, TypeRecord
from mlmd_exercise.schema import TypeSpec
from mlmd_exercise.store.backend import Backend, ContextWrite

__all__ = ["DEFAULT_EXPERIMENT", "Catalog", "choose"]



def choose(found: Sequence[Tuple[int, str]], name: str, where: object) -> int:
    """The one context id among (id, type name) pairs that share `name`: the only one, or our
    Experiment among several.

    Raises:
        NotFoundError: none, or several of other types (naming the types).
    """
    if not found:
        raise NotFoundError(f"no experiment named '{name}' in {where}")
    if len(found) == 1:
        return found[0][0]
    ours = [i for i, t in found if t == schema.EXPERIMENT.name]
    if len(ours) == 1:
        return ours[0]
    types = " and ".join(f"'{t}'" for t in sorted(t for _, t in found))
    raise NotFoundError(f"context name '{name}' is ambiguous in {where}: contexts of types {types} "
                        f"have it; name the type with --context-type")


class Catalog:
    """Types and contexts of one store, by name. `where` names the store in messages."""

    def __init__(self, backend: Backend, where: object, lock: Any = None) -> None:
        self.backend = backend
        self.where = where
        self._lock = lock  # the store's write lock (re-entrant); None: opened read-only
        self._types: Dict[Kind, Dict[str, TypeRecord]] = {}
        self._specs: Dict[Tuple[Kind, str], TypeSpec] = {}  # as registered: ours, or `foreign`
        self._experiments: Dict[str, int] = {}  # experiment name -> context id, once stored

    # -- types --------------------------------------------------------------------------

    def types(self, kind: Kind, fresh: bool = False) -> Dict[str, TypeRecord]:
        """The stored types of a kind by name.

        Raises:
            SchemaError: a name is registered twice (by other tools, concurrently: MLMD has
                no unique constraint on type names), so queries by name would miss nodes.
        """
        if fresh or kind not in self._types:
            by_name: Dict[str, TypeRecord] = {}
            for t in self.backend.types(kind):
                if t.name in by_name:
                    raise SchemaError(
                        f"{kind.value} type '{t.name}' is registered twice in the store "
                        f"(type ids {by_name[t.name].id} and {t.id}): queries by type name would miss nodes")
                by_name[t.name] = t
            self._types[kind] = by_name
        return self._types[kind]

    def type_id(self, kind: Kind, name: str) -> Optional[int]:
        """The id of the stored type of this kind and name, if there is one."""
        found = self.types(kind).get(name)
        if found is None:  # perhaps registered since, by another process
            found = self.types(kind, fresh=True).get(name)
        return found.id if found is not None else None

    def require_type(self, kind: Kind, name: str) -> int:
        """The id of the stored type of this kind and name.

        Raises:
            NotFoundError: there is none.
        """
        type_id = self.type_id(kind, name)
        if type_id is None:
            raise NotFoundError(f"no {kind.value} type named '{name}' in {self.where}")
        return type_id

    def _writing(self) -> ContextManager[Any]:
        if self._lock is None:
            raise StoreError(f"store '{self.where}' was opened read-only")
        return self._lock

    def register(self, specs: Iterable[TypeSpec]) -> None:
        """Registers types idempotently, under the store's write lock (taken here, only where
        some are not registered in this catalog yet).

        A type already stored with the same properties is not written again, so
        registering on an up-to-date store is read-only. A type of ours stored with
        fewer fields (by an older version) gets the missing ones. A type of the same
        name that another program registered with other properties is never changed:
        its spec is kept `foreign`, with no declared properties.

        Raises:
            StoreError: the store was opened read-only.
        """
        todo = [s for s in specs if (s.kind, s.name) not in self._specs]
        if not todo:
            return
        with self._writing():
            self._register(todo)

    def _register(self, todo: Sequence[TypeSpec]) -> None:
        for kind in {s.kind for s in todo}:
            self.types(kind, fresh=True)
        for spec in todo:
            stored = self._types[spec.kind].get(spec.name)
            if stored is not None and not schema.is_ours(stored, spec):
                self._specs[(spec.kind, spec.name)] = TypeSpec(spec.kind, spec.name, {}, foreign=True)
                continue
            if stored is None or any(key not in stored.properties for key in spec.properties):
                type_id = self.backend.put_type(spec.kind, spec.name, spec.properties)
                self._types[spec.kind][spec.name] = TypeRecord(type_id, spec.kind, spec.name,
                                                               dict(spec.properties))
            self._specs[(spec.kind, spec.name)] = spec

    def spec(self, kind: Kind, name: str) -> TypeSpec:
        """The type to write by, registered (see `register`): ours, or a foreign one of that
        name (whose values all go into custom properties)."""
        found = self._specs.get((kind, name))  # registered already: the common case, by far
        if found is None:
            self.register([schema.spec_for(kind, name)])
            found = self._specs[(kind, name)]
        return found

    def spec_id(self, spec: TypeSpec) -> int:
        """The id of the type `spec` declares, registered (see `register`)."""
        if (spec.kind, spec.name) not in self._specs:
            self.register([spec])
        return self._types[spec.kind][spec.name].id

    def writable_type(self, kind: Kind, name: str) -> Tuple[TypeSpec, int]:
        """The type to write by (`spec`) and its id (`spec_id`)."""
        spec = self.spec(kind, name)
        return spec, self.spec_id(spec)

    def spec_by_id(self, type_id: int) -> Optional[TypeSpec]:
        """The registered spec of the type with this id, if this catalog registered it."""
        for (kind, name), spec in self._specs.items():
            if self._types[kind][name].id == type_id:
                return spec
        return None

    # -- contexts -----------------------------------------------------------------------

    def experiment(self, name: str) -> ContextWrite:
        """Our experiment called `name`, to write a run into: by id once it is stored.

        Raises:
            MlmdExerciseError: an empty name.
        """
        if not name.strip():
            raise MlmdExerciseError(f"an experiment name must not be empty, not '{name}'")
        spec = self.spec(Kind.CONTEXT, schema.EXPERIMENT.name)
        type_id = self.spec_id(spec)
        if name not in self._experiments:
            stored = self.backend.context_by_name(spec.name, name)
            if stored is not None:
                self._experiments[name] = stored.id
        return ContextWrite(type_id, spec.name, name, id=self._experiments.get(name, 0))

    def remember_experiment(self, name: str, context_id: Optional[int]) -> None:
        if context_id:
            self._experiments[name] = context_id

    def context(self, name: str, context_type: Optional[str] = None) -> ContextRecord:
        """The context called `name`, of any type (or of `context_type`): our experiment
        where several types have the name.

        Raises:
            NotFoundError: no context has that name (in that type), the type is unknown,
                or the name is ambiguous across types.
        """
        if context_type is not None:
            self.require_context_type(context_type)
            found = self.backend.context_by_name(context_type, name)
            if found is None:
                raise NotFoundError(f"no {context_type} context named '{name}' in {self.where}")
            return found
        by_id: Dict[int, ContextRecord] = {}
        for ctype in self.types(Kind.CONTEXT, fresh=True):
            found = self.backend.context_by_name(ctype, name)
            if found is not None:
                by_id[found.id] = found
        return by_id[choose([(c.id, c.type) for c in by_id.values()], name, self.where)]

    def context_id(self, name: str, context_type: Optional[str] = None) -> int:
        """The id of the context called `name` (see `context`)."""
        return self.context(name, context_type).id

    def require_context_type(self, name: str) -> int:
        """The id of the context type called `name`.

        Raises:
            NotFoundError: there is none.
        """
        type_id = self.type_id(Kind.CONTEXT, name)
        if type_id is None:
            raise NotFoundError(f"no context type named '{name}' in {self.where}")
        return type_id

    def context_types(self) -> List[str]:
        return sorted(self.types(Kind.CONTEXT, fresh=True))
