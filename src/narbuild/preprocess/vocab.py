"""The operator vocabulary: the published NAR operators, then narbuild's stable extra ids.

Ids are fixed forever (a dataset and an encoder checkpoint depend on them):

* ``0`` is ``unknown``;
* ``1 .. 89`` are :data:`PUBLISHED`, the 89 operators of the published NAR dataset in its index
  order (``reference/nar-operators-89.txt``): autograd class names without ``Backward<N>``, in the
  PyTorch <= 1.10 spelling;
* ``90 ..`` are :data:`EXTRA`: every other forward autograd node of PyTorch 2.x (the
  ``torch._C._functions`` classes, suffix stripped, minus test, nested-tensor, ``_copy`` and
  backward-of-backward classes, and minus the names :data:`narbuild.preprocess.operators.RENAMES`
  folds onto a published one), frozen when this file was written. **Append only**: new operators
  go at the end, nothing is ever reordered or removed.

An operator in neither list (a custom ``torch.autograd.Function``, an op of a newer PyTorch) gets
id 0 and keeps its name in ``op_names``; ``narbuild preprocess`` reports those names and their share
of nodes, so they can be appended here.
"""

from __future__ import annotations

UNKNOWN = "unknown"

PUBLISHED: tuple[str, ...] = (
    'Mean', 'UpsampleBilinear2D', 'ViewAsReal', 'Addmm', 'Hardswish', 'Silu', 'Norm', 'IndexCopy',
    'ConstantPadNd', 'Abs', 'Expand', 'Roll', 'Softmax', 'Alias', 'ToCopy', 'Squeeze', 'Mm',
    'Maximum', 'Sqrt', 'GeLUFunction', 'Permute', 'Where', 'Stack', 'CheckpointFunction',
    'UpsampleBicubic2D', 'AdaptiveAvgPool2D', 'Convolution', 'Div', 'FftC2C', 'Slice', 'floor_ste',
    'Sigmoid', 'Clamp', 'XSoftmax', 'Gather', 'Baddbmm', 'ReshapeAlias', 'Amax', 'Unsqueeze',
    'Cat', 'Transpose', 'Embedding', 'Glu', 'Split', 'Pow', 'Rsub', 'Erf', 'FixedPointMul', 'Sign',
    'IndexPut', 'ClampMin', 'NativeBatchNorm', 'Mul', 'Index', 'Select', 'Exp',
    'MaxPool2DWithIndices', 'AvgPool2D', 'View', 'Reciprocal', 'Rsqrt', 'AsStrided', 'XDropout',
    'Max', 'Clone', 'NativeLayerNorm', 'WeightNormInterface', 'NativeGroupNorm', 'MaskedFill',
    'Sum', 'Repeat', 'Hardsigmoid', 'Neg', 'Bmm', 'Tanh', 'Sub', 'Im2Col', 'Hardtanh', 'Minimum',
    'IndexSelect', 'SplitWithSizes', 'Gelu', 'SymmetricQuantFunction', 'round_ste', 'T',
    'YosoCumulation', 'Add', 'Relu', 'UnsafeView',
)

EXTRA: tuple[str, ...] = (
    'Acos', 'Acosh', 'AdaptiveAvgPool3D', 'AdaptiveMaxPool2D', 'AdaptiveMaxPool3D', 'Addbmm',
    'Addcdiv', 'Addcmul', 'Addmv', 'Addr', 'AffineGridGenerator', 'Amin', 'Aminmax', 'Angle',
    'AsStridedScatter', 'Asin', 'Asinh', 'Atan', 'Atan2', 'Atanh', 'AvgPool3D', 'Bernoulli',
    'BinaryCrossEntropy', 'BinaryCrossEntropyWithLogits', 'BlockDiag', 'Cauchy', 'Cdist', 'Ceil',
    'Celu', 'ChannelShuffle', 'CholeskyInverse', 'CholeskySolve', 'Chunk', 'ClampMax', 'Coalesce',
    'Col2Im', 'Complex', 'Conj', 'ConjPhysical', 'ConvTbc', 'CopySlices', 'Copysign', 'Cos',
    'Cosh', 'CtcLoss', 'CudnnAffineGridGenerator', 'CudnnAttention', 'CudnnCtcLoss',
    'CudnnGridSampler', 'CudnnRnn', 'Cummax', 'Cummin', 'Cumprod', 'Cumsum', 'Deg2Rad',
    'DiagEmbed', 'Diagonal', 'DiagonalScatter', 'Digamma', 'Dist', 'Dot', 'EfficientAttention',
    'Elu', 'EmbeddingBag', 'EmbeddingRenorm', 'Eq', 'Erfc', 'Erfinv', 'EuclideanDist', 'Exp2',
    'Expm1', 'Exponential', 'FakeQuantizeLearnablePerChannelAffine',
    'FakeQuantizeLearnablePerTensorAffine', 'FakeQuantizePerChannelAffineCachemask',
    'FakeQuantizePerTensorAffineCachemask', 'FakeQuantizePerTensorAffineCachemaskTensorQparams',
    'FftC2R', 'FftR2C', 'Fill', 'FlashAttention', 'Flip', 'Floor', 'Fmax', 'Fmin', 'Fmod', 'Frac',
    'FractionalMaxPool2D', 'FractionalMaxPool3D', 'Frexp', 'FusedMovingAvgObsFqHelper',
    'FusedRmsNorm', 'Ge', 'Geometric', 'Geqrf', 'GridSampler2D', 'GridSampler2DCpuFallback',
    'GridSampler3D', 'GroupedMm', 'Gt', 'Hardshrink', 'HuberLoss', 'Hypot', 'I0', 'Igamma',
    'Igammac', 'IndexAdd', 'IndexFill', 'IndexReduce', 'Kthvalue', 'Ldexp', 'Le', 'LeakyRelu',
    'Lerp', 'Lgamma', 'Lift', 'LiftFresh', 'LinalgCholeskyEx', 'LinalgCross', 'LinalgDet',
    'LinalgEig', 'LinalgEigh', 'LinalgHouseholderProduct', 'LinalgInvEx', 'LinalgLstsq',
    'LinalgLu', 'LinalgLuFactorEx', 'LinalgLuSolve', 'LinalgMatrixExp', 'LinalgMatrixSqrth',
    'LinalgPinv', 'LinalgPolar', 'LinalgQr', 'LinalgSlogdet', 'LinalgSolveEx',
    'LinalgSolveTriangular', 'LinalgSvd', 'Linear', 'Log', 'Log10', 'Log1P', 'Log2', 'LogNormal',
    'LogSigmoid', 'LogSoftmax', 'Logaddexp', 'Logaddexp2', 'Logcumsumexp', 'Logit', 'Logsumexp',
    'LstmMps', 'Lt', 'LuUnpack', 'MaskedScatter', 'MaskedSelect', 'MaskedSoftmax', 'Matmul',
    'MaxPool3DWithIndices', 'MaxUnpool2D', 'MaxUnpool3D', 'Median', 'Min', 'MiopenCtcLoss',
    'MiopenRnn', 'Mish', 'MkldnnMaxPool3D', 'MkldnnRnnLayer', 'Mode', 'MseLoss', 'MultiMarginLoss',
    'MultilabelMarginLoss', 'Mv', 'Mvlgamma', 'NanToNum', 'Nanmedian', 'Nansum', 'NarrowCopy',
    'NativeDropout', 'Ne', 'NegView', 'Nextafter', 'NllLoss', 'NllLoss2D', 'Normal', 'Ormqr',
    'PackPaddedSequence', 'Pdist', 'PinMemory', 'PixelShuffle', 'PixelUnshuffle', 'Poisson',
    'Polar', 'Polygamma', 'PreluKernel', 'Prod', 'Put', 'Rad2Deg', 'Random', 'ReflectionPad1D',
    'ReflectionPad2D', 'ReflectionPad3D', 'Remainder', 'Renorm', 'ReplicationPad1D',
    'ReplicationPad2D', 'ReplicationPad3D', 'ReshapeCopy', 'Rot90', 'Round', 'RreluWithNoise',
    'RreluWithNoiseFunctional', 'ScaledDotProductCudnnAttention',
    'ScaledDotProductEfficientAttention', 'ScaledDotProductFlashAttention',
    'ScaledDotProductFlashAttentionForCpu', 'Scatter', 'ScatterAdd', 'ScatterReduce',
    'SegmentReduce', 'SelectScatter', 'Sgn', 'Sin', 'Sinc', 'Sinh', 'SliceInverse', 'SliceScatter',
    'SmoothL1Loss', 'SoftMarginLoss', 'Softplus', 'Softshrink', 'Sort', 'SparseAddmm',
    'SparseCompressedTensor', 'SparseCooTensorWithDimsAndTensors', 'SparseLogSoftmax',
    'SparseMask', 'SparseMmReduceImpl', 'SparseSampledAddmm', 'SparseSoftmax',
    'SparseSparseMatmul', 'SparseSum', 'SpecialEntr', 'SpecialErfcx', 'SpecialI0E', 'SpecialI1',
    'SpecialI1E', 'SpecialLogNdtr', 'SpecialNdtri', 'SpecialXlog1Py', 'SpecialZeta',
    'StandardGamma', 'StandardGammaGrad', 'Std', 'StdMean', 'Take', 'Tan', 'ThnnFusedGruCell',
    'ThnnFusedLstmCell', 'Threshold', 'ToDense', 'ToMkldnn', 'ToPaddedTensor', 'ToSparse',
    'ToSparseBsc', 'ToSparseBsr', 'ToSparseCsc', 'ToSparseCsr', 'Topk', 'Trace', 'TriangularSolve',
    'Tril', 'Trilinear', 'Triu', 'Trunc', 'Unbind', 'Unfold', 'Uniform', 'Unique', 'Unique2',
    'UniqueConsecutive', 'UniqueDim', 'UniqueDimConsecutive', 'UnsafeMaskedIndex',
    'UnsafeMaskedIndexPutAccumulate', 'UpsampleLanczos2DAa', 'UpsampleLinear1D',
    'UpsampleNearest1D', 'UpsampleNearest2D', 'UpsampleNearest3D', 'UpsampleNearestExact1D',
    'UpsampleNearestExact2D', 'UpsampleNearestExact3D', 'UpsampleTrilinear3D', 'Values', 'Var',
    'VarMean', 'Vdot', 'ViewAsComplex', 'Xlogy', 'Zero',
)

VOCAB: tuple[str, ...] = (UNKNOWN, *PUBLISHED, *EXTRA)
"""Id -> operator name."""

OP_ID: dict[str, int] = {name: i for i, name in enumerate(VOCAB)}
"""Operator name -> id."""

FIRST_EXTRA_ID = len(PUBLISHED) + 1
"""The first id of narbuild's extra operators: ids below it are the published vocabulary
(0 = unknown, then the 89)."""
