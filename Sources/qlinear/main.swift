import Ops
