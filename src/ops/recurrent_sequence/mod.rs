//! Whole-sequence LSTM and GRU, for [`LstmCell`] and [`TorchGruCell`] (PyTorch's `nn.LSTM` and
//! `nn.GRU`).
//!
//! The runners of [`crate::recurrent`] unroll a cell step by step, a dozen small dfdx ops per
//! step. For these two cells a whole sequence can instead run as one op:
//! - `Cpu`: a kernel of typednet's own (`cpu_kernel.rs`), recorded on the tape as *one* op with
//!   its own backpropagation through time: the input projection of every step in one matmul, per
//!   step one small matmul and one pass of gate arithmetic over preallocated buffers, and on
//!   backward the weight gradients as big matmuls over all steps.
//! - `Cuda`: the cell unrolled by dfdx ops (`reference.rs`), as for every other cell.
//!
//! [`RecurrentSequenceKernel`] names the two per device, as the other ops' kernel traits do.
//! The runners ([`crate::recurrent::try_run_sequence`] and the others) reach the CPU kernel
//! through [`RecurrentCell::try_run_fused`](crate::recurrent::RecurrentCell::try_run_fused)
//! when they start from the zero state. Since the cells implement `RecurrentCell` on every dfdx
//! device (code generic over `dfdx::tensor_ops::Device` must keep compiling), that method tells
//! `Cpu` apart at run time, by type id (`try_on_cpu`), for `f32` and `f64`; on any other device,
//! or with a given initial state, the runners unroll the cell.
//!
//! The unrolled cell is also the readable reference the CPU kernel is tested against (outputs,
//! last state and every gradient, in `f32` and `f64`), besides finite differences.

pub(crate) mod cpu_kernel;
// Without CUDA the reference runs in the tests only, as the truth the CPU kernel is held to.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(crate) mod reference;

use core::any::Any;
use core::marker::PhantomData;

use dfdx::shapes::{Const, Dim, Dtype};
use dfdx::tensor::{Cpu, CpuError, Gradients, Merge, NoneTape, PutTape, SplitTape, Tape, Tensor};
use dfdx::tensor_ops::Device;

use crate::network::Element;
use crate::recurrent::{LstmCell, LstmState, TorchGruCell};

/// What a whole-sequence run leaves: the hidden outputs of every step in time order
/// (`[B, S, H]`, when asked for), the state after the last step, and the gradient tape that
/// records the run. The tensors carry empty tapes; the caller puts `tape` where it belongs.
#[derive(Debug)]
pub struct SequenceRun<B: Dim, S: Dim, const H: usize, E: Dtype, D: Device<E>, State, T> {
    /// Every `h_t`, `[B, S, H]` in time order (also for a reversed run), if collected.
    pub outputs: Option<Tensor<(B, S, Const<H>), E, D>>,
    /// The state after the last step read (for a reversed run, after `x_0`).
    pub last: State,
    /// The tape: the input's, with the run recorded on it.
    pub tape: T,
}

/// The device-specific whole-sequence runs of [`LstmCell`] and [`TorchGruCell`] from the zero
/// state, chosen by the device type as dfdx chooses its kernels.
///
/// `reverse` reads the sequence from the last step to the first (the backward half of a
/// bidirectional layer); `collect` asks for the outputs of every step.
pub trait RecurrentSequenceKernel<E: Element>: Device<E> {
    /// [`LstmCell`] over `x` (`[B, S, I]`); the last state is `(h, C)`.
    #[allow(clippy::type_complexity)]
    fn try_lstm_sequence_kernel<B: Dim, S: Dim, const I: usize, const H: usize, T: Tape<E, Self>>(
        cell: &LstmCell<I, H, E, Self>,
        x: Tensor<(B, S, Const<I>), E, Self, T>,
        reverse: bool,
        collect: bool,
    ) -> Result<SequenceRun<B, S, H, E, Self, LstmState<B, H, E, Self>, T>, Self::Err>;

    /// [`TorchGruCell`] over `x` (`[B, S, I]`); the last state is `h`.
    #[allow(clippy::type_complexity)]
    fn try_gru_sequence_kernel<B: Dim, S: Dim, const I: usize, const H: usize, T: Tape<E, Self>>(
        cell: &TorchGruCell<I, H, E, Self>,
        x: Tensor<(B, S, Const<I>), E, Self, T>,
        reverse: bool,
        collect: bool,
    ) -> Result<SequenceRun<B, S, H, E, Self, Tensor<(B, Const<H>), E, Self>, T>, Self::Err>;
}

/// What the cells' [`RecurrentCell::try_run_fused`](crate::recurrent::RecurrentCell::try_run_fused)
/// runs: the CPU kernel when `cell` is the `Cpu` cell `CC` (the device and element type are
/// those of `CC`), else `x` handed back for the runners to unroll.
///
/// [`RecurrentCell`](crate::recurrent::RecurrentCell) is implemented for the cells on every dfdx
/// device, so that code generic over `dfdx::tensor_ops::Device` keeps working; the device is
/// therefore told apart at run time (by type id, as `Any` does) rather than by a trait bound.
/// When it is `Cpu`, every type below is the one it stands for, and the casts are identities.
#[allow(clippy::type_complexity)]
pub(crate) fn try_on_cpu<
    C,
    CC,
    State,
    CpuState,
    B,
    S,
    const I: usize,
    const H: usize,
    E,
    D,
    T,
    E2,
>(
    cell: &C,
    x: Tensor<(B, S, Const<I>), E, D, T>,
    reverse: bool,
    collect: bool,
    kernel: impl FnOnce(
        &CC,
        Tensor<(B, S, Const<I>), E2, Cpu, OnCpu<T, E, D>>,
        bool,
        bool,
    )
        -> Result<SequenceRun<B, S, H, E2, Cpu, CpuState, OnCpu<T, E, D>>, CpuError>,
) -> Result<Result<SequenceRun<B, S, H, E, D, State, T>, Tensor<(B, S, Const<I>), E, D, T>>, D::Err>
where
    C: 'static,
    CC: 'static,
    State: 'static,
    CpuState: 'static,
    B: Dim,
    S: Dim,
    E: Dtype,
    D: Device<E>,
    T: Tape<E, D>,
    E2: Dtype,
    Cpu: Device<E2>,
{
    let Some(cpu_cell) = (cell as &dyn Any).downcast_ref::<CC>() else {
        return Ok(Err(x));
    };
    let (x, tape) = x.split_tape();
    let x = same::<_, Tensor<(B, S, Const<I>), E2, Cpu>>(x);
    let run = kernel(
        cpu_cell,
        x.put_tape(OnCpu(tape, PhantomData)),
        reverse,
        collect,
    )
    .map_err(same_error::<D::Err>)?;
    Ok(Ok(SequenceRun {
        outputs: run.outputs.map(same),
        last: same(run.last),
        tape: run.tape.0,
    }))
}

/// `a` as the type it is: `A` and `B` are the same type (checked).
fn same<A: 'static, B: 'static>(a: A) -> B {
    *(Box::new(a) as Box<dyn Any>)
        .downcast::<B>()
        .unwrap_or_else(|_| unreachable!("the same type"))
}

/// A CPU error as the device's error type, which is `CpuError` itself where this is called
/// (`HasErr::Err` is not `'static`, so `Any` cannot check it).
fn same_error<Err>(e: CpuError) -> Err {
    assert_eq!(
        core::mem::size_of::<Err>(),
        core::mem::size_of::<CpuError>()
    );
    let e = core::mem::ManuallyDrop::new(e);
    // SAFETY: only called when the device is `Cpu`, whose `Err` is `CpuError`.
    unsafe { core::mem::transmute_copy(&*e) }
}

/// A tape of device `D` (which is `Cpu`, see [`try_on_cpu`]) seen as a tape of `Cpu`: the CPU
/// kernel records on it, its operations run on the gradients of `D`, which are the same.
#[derive(Debug)]
pub(crate) struct OnCpu<T, E, D>(T, PhantomData<(E, D)>);

impl<T: Default, E, D> Default for OnCpu<T, E, D> {
    fn default() -> Self {
        Self(T::default(), PhantomData)
    }
}

impl<T: Merge<T>, E, D> Merge<OnCpu<T, E, D>> for OnCpu<T, E, D> {
    fn merge(self, other: Self) -> Self {
        Self(self.0.merge(other.0), PhantomData)
    }
}

impl<T: Merge<NoneTape>, E, D> Merge<NoneTape> for OnCpu<T, E, D> {
    fn merge(self, other: NoneTape) -> Self {
        Self(self.0.merge(other), PhantomData)
    }
}

impl<E2: Dtype, T: Tape<E, D>, E: Dtype, D: Device<E>> Tape<E2, Cpu> for OnCpu<T, E, D> {
    const OWNS_TAPE: bool = T::OWNS_TAPE;

    fn add_backward_op<F>(&mut self, operation: F)
    where
        F: 'static + FnOnce(&mut Gradients<E2, Cpu>) -> Result<(), CpuError>,
    {
        self.0.add_backward_op(move |grads: &mut Gradients<E, D>| {
            let grads = (grads as &mut dyn Any)
                .downcast_mut::<Gradients<E2, Cpu>>()
                .unwrap_or_else(|| unreachable!("the device is Cpu"));
            operation(grads).map_err(same_error::<D::Err>)
        });
    }
}

/// On the CPU, typednet's own kernel (`cpu_kernel.rs`).
impl<E: Element> RecurrentSequenceKernel<E> for dfdx::tensor::Cpu
where
    dfdx::tensor::Cpu: Device<E>,
{
    fn try_lstm_sequence_kernel<
        B: Dim,
        S: Dim,
        const I: usize,
        const H: usize,
        T: Tape<E, Self>,
    >(
        cell: &LstmCell<I, H, E, Self>,
        x: Tensor<(B, S, Const<I>), E, Self, T>,
        reverse: bool,
        collect: bool,
    ) -> Result<SequenceRun<B, S, H, E, Self, LstmState<B, H, E, Self>, T>, Self::Err> {
        cpu_kernel::try_lstm_sequence(cell, x, reverse, collect)
    }

    fn try_gru_sequence_kernel<B: Dim, S: Dim, const I: usize, const H: usize, T: Tape<E, Self>>(
        cell: &TorchGruCell<I, H, E, Self>,
        x: Tensor<(B, S, Const<I>), E, Self, T>,
        reverse: bool,
        collect: bool,
    ) -> Result<SequenceRun<B, S, H, E, Self, Tensor<(B, Const<H>), E, Self>, T>, Self::Err> {
        cpu_kernel::try_gru_sequence(cell, x, reverse, collect)
    }
}

/// On CUDA the cell unrolled by dfdx ops is the kernel, as for every other cell.
#[cfg(feature = "cuda")]
impl<E: Element> RecurrentSequenceKernel<E> for dfdx::tensor::Cuda
where
    dfdx::tensor::Cuda: Device<E>,
{
    fn try_lstm_sequence_kernel<
        B: Dim,
        S: Dim,
        const I: usize,
        const H: usize,
        T: Tape<E, Self>,
    >(
        cell: &LstmCell<I, H, E, Self>,
        x: Tensor<(B, S, Const<I>), E, Self, T>,
        reverse: bool,
        collect: bool,
    ) -> Result<SequenceRun<B, S, H, E, Self, LstmState<B, H, E, Self>, T>, Self::Err> {
        reference::try_sequence(cell, x, reverse, collect)
    }

    fn try_gru_sequence_kernel<B: Dim, S: Dim, const I: usize, const H: usize, T: Tape<E, Self>>(
        cell: &TorchGruCell<I, H, E, Self>,
        x: Tensor<(B, S, Const<I>), E, Self, T>,
        reverse: bool,
        collect: bool,
    ) -> Result<SequenceRun<B, S, H, E, Self, Tensor<(B, Const<H>), E, Self>, T>, Self::Err> {
        reference::try_sequence(cell, x, reverse, collect)
    }
}

#[cfg(test)]
mod tests {
    use dfdx::nn::BuildModule;
    use dfdx::shapes::{Const, Dtype, HasShape, Shape};
    use dfdx::tensor::{Gradients, NoneTape, OwnedTape, PutTape, Tensor, TensorFromVec, Trace};
    use dfdx::tensor_ops::{Backward, Device, SumTo, TryAdd, TryMul};

    use super::reference;
    use crate::gradcheck::{check_gradient, check_parameter_gradient};
    use crate::network::Element;
    use crate::ops::conv2d::test_support::{cast, random_values, to_f64};
    use crate::recurrent::{LstmCell, LstmState, RecurrentCell, TorchGruCell};
    use crate::testing::TestDevice;

    type Dev = TestDevice;
    type Taped<S, E> = Tensor<S, E, Dev, OwnedTape<E, Dev>>;

    #[derive(Debug, Clone, Copy)]
    enum Implementation {
        Kernel,
        Reference,
    }

    /// The tensors of a last state: `[h]`, or `[h, C]` for the LSTM.
    trait Parts<const H: usize, E: Dtype> {
        fn parts(self) -> Vec<Tensor<(usize, Const<H>), E, Dev>>;
    }

    impl<const H: usize, E: Dtype> Parts<H, E> for LstmState<usize, H, E, Dev> {
        fn parts(self) -> Vec<Tensor<(usize, Const<H>), E, Dev>> {
            vec![self.h, self.c]
        }
    }

    impl<const H: usize, E: Dtype> Parts<H, E> for Tensor<(usize, Const<H>), E, Dev> {
        fn parts(self) -> Vec<Tensor<(usize, Const<H>), E, Dev>> {
            vec![self]
        }
    }

    /// A cell with a fused kernel: its four parameters' gradients, and values set from seeds.
    trait Cell<const I: usize, const H: usize, E: Element>:
        RecurrentCell<I, H, E, Dev> + BuildModule<Dev, E> + Clone
    where
        Dev: Device<E>,
    {
        fn parameter_gradients(&self, grads: &Gradients<E, Dev>) -> Vec<Vec<f64>>;
    }

    macro_rules! cell_impl {
        ($cell:ident) => {
            impl<const I: usize, const H: usize, E: Element> Cell<I, H, E> for $cell<I, H, E, Dev>
            where
                Dev: Device<E> + super::RecurrentSequenceKernel<E>,
            {
                fn parameter_gradients(&self, grads: &Gradients<E, Dev>) -> Vec<Vec<f64>> {
                    vec![
                        to_f64(&grads.get(&self.weight_ih).as_vec()),
                        to_f64(&grads.get(&self.weight_hh).as_vec()),
                        to_f64(&grads.get(&self.bias_ih).as_vec()),
                        to_f64(&grads.get(&self.bias_hh).as_vec()),
                    ]
                }
            }
        };
    }
    cell_impl!(LstmCell);
    cell_impl!(TorchGruCell);

    /// What a run gives: the outputs (if collected) and last state, then the gradients of `x`
    /// and of the four parameters, for a loss that weighs every value with a fixed random weight.
    struct Outcome {
        values: Vec<Vec<f64>>,
        gradients: Vec<Vec<f64>>,
    }

    fn weights<S: Shape, E: Element>(dev: &Dev, shape: S, seed: u64) -> Tensor<S, E, Dev>
    where
        Dev: Device<E>,
    {
        dev.tensor_from_vec(cast(&random_values(shape.num_elements(), seed)), shape)
    }

    /// The loss `Σ w ∗ v` over the outputs (if any) and the last state's tensors, with `tape`
    /// on the first term.
    fn weighted_loss<const H: usize, E: Element>(
        dev: &Dev,
        outputs: Option<Tensor<(usize, usize, Const<H>), E, Dev>>,
        last: Vec<Tensor<(usize, Const<H>), E, Dev>>,
        tape: OwnedTape<E, Dev>,
    ) -> Taped<(), E>
    where
        Dev: Device<E>,
    {
        let mut tape = Some(tape);
        let mut loss: Option<Taped<(), E>> = None;
        let mut add = |term: Taped<(), E>| {
            loss = Some(match loss.take() {
                Some(l) => l.try_add(term).unwrap(),
                None => term,
            });
        };
        if let Some(y) = outputs {
            let w = weights(dev, *y.shape(), 11);
            add(y
                .put_tape(tape.take().unwrap())
                .try_mul(w)
                .unwrap()
                .try_sum()
                .unwrap());
        }
        for (n, v) in last.into_iter().enumerate() {
            let w = weights(dev, *v.shape(), 12 + n as u64);
            let v = v.put_tape(tape.take().unwrap_or_default());
            add(v.try_mul(w).unwrap().try_sum().unwrap());
        }
        loss.unwrap()
    }

    fn run<C, const I: usize, const H: usize, E: Element>(
        implementation: Implementation,
        cell: &C,
        x: Taped<(usize, usize, Const<I>), E>,
        reverse: bool,
        collect: bool,
    ) -> super::SequenceRun<usize, usize, H, E, Dev, C::State<usize, NoneTape>, OwnedTape<E, Dev>>
    where
        C: RecurrentCell<I, H, E, Dev>,
        Dev: Device<E>,
    {
        match implementation {
            Implementation::Kernel => cell
                .try_run_fused(x, reverse, collect)
                .unwrap()
                .unwrap_or_else(|_| panic!("the cell has a fused kernel")),
            Implementation::Reference => {
                reference::try_sequence(cell, x, reverse, collect).unwrap()
            }
        }
    }

    fn outcome<C, const I: usize, const H: usize, E: Element>(
        implementation: Implementation,
        cell: &C,
        x: &Tensor<(usize, usize, Const<I>), E, Dev>,
        reverse: bool,
        collect: bool,
    ) -> Outcome
    where
        C: Cell<I, H, E>,
        C::State<usize, NoneTape>: Parts<H, E>,
        Dev: Device<E>,
    {
        let dev = x.device().clone();
        let result = run::<C, I, H, E>(implementation, cell, x.leaky_trace(), reverse, collect);
        let mut values = Vec::new();
        if let Some(y) = &result.outputs {
            values.push(to_f64(&y.as_vec()));
        }
        let last = result.last.parts();
        values.extend(last.iter().map(|v| to_f64(&v.as_vec())));
        let grads = weighted_loss(&dev, result.outputs, last, result.tape).backward();
        let mut gradients = vec![to_f64(&grads.get(x).as_vec())];
        gradients.extend(cell.parameter_gradients(&grads));
        Outcome { values, gradients }
    }

    /// The kernel against the unrolled cell, forwards and reversed, with and without the
    /// outputs, on a few shapes (`T = 1`, `T = 5`, batch 1 and 3, `I ≠ H`).
    fn check_against_reference<C, const I: usize, const H: usize, E: Element>(tolerance: f64)
    where
        C: Cell<I, H, E>,
        C::State<usize, NoneTape>: Parts<H, E>,
        Dev: Device<E>,
    {
        let dev = crate::test_device!(7);
        let cell = C::build(&dev);
        for (batch, steps) in [(1, 1), (3, 1), (1, 5), (3, 5)] {
            let x = weights(
                &dev,
                (batch, steps, Const::<I>),
                3 + batch as u64 * steps as u64,
            );
            for reverse in [false, true] {
                for collect in [false, true] {
                    let kernel =
                        outcome::<C, I, H, E>(Implementation::Kernel, &cell, &x, reverse, collect);
                    let truth = outcome::<C, I, H, E>(
                        Implementation::Reference,
                        &cell,
                        &x,
                        reverse,
                        collect,
                    );
                    let case = format!(
                        "I = {I}, H = {H}, batch {batch}, {steps} steps, reverse {reverse}, \
                         collect {collect}"
                    );
                    for (what, a, b) in [
                        ("value", &kernel.values, &truth.values),
                        ("gradient", &kernel.gradients, &truth.gradients),
                    ] {
                        assert_eq!(a.len(), b.len(), "{case}: {what}s");
                        for (n, (a, b)) in a.iter().zip(b).enumerate() {
                            eprintln!("{case}: {what} {n}");
                            crate::assert_close!(a, b, tolerance);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn lstm_kernel_matches_the_unrolled_cell() {
        check_against_reference::<LstmCell<3, 4, f64, Dev>, 3, 4, f64>(1e-10);
        check_against_reference::<LstmCell<5, 2, f64, Dev>, 5, 2, f64>(1e-10);
        check_against_reference::<LstmCell<3, 4, f32, Dev>, 3, 4, f32>(1e-5);
    }

    #[test]
    fn gru_kernel_matches_the_unrolled_cell() {
        check_against_reference::<TorchGruCell<3, 4, f64, Dev>, 3, 4, f64>(1e-10);
        check_against_reference::<TorchGruCell<5, 2, f64, Dev>, 5, 2, f64>(1e-10);
        check_against_reference::<TorchGruCell<3, 4, f32, Dev>, 3, 4, f32>(1e-5);
    }

    /// Large enough for the batch to be split between the threads (on two or more).
    #[test]
    fn kernels_match_the_unrolled_cells_on_a_larger_batch() {
        let dev = crate::test_device!(9);
        let x = weights::<_, f32>(&dev, (37usize, 4usize, Const::<6>), 5);
        let lstm = LstmCell::<6, 64, f32, Dev>::build(&dev);
        let gru = TorchGruCell::<6, 64, f32, Dev>::build(&dev);
        for reverse in [false, true] {
            let a = outcome::<_, 6, 64, f32>(Implementation::Kernel, &lstm, &x, reverse, true);
            let b = outcome::<_, 6, 64, f32>(Implementation::Reference, &lstm, &x, reverse, true);
            for (a, b) in a
                .values
                .iter()
                .chain(&a.gradients)
                .zip(b.values.iter().chain(&b.gradients))
            {
                crate::assert_close!(a, b, 1e-4);
            }
            let a = outcome::<_, 6, 64, f32>(Implementation::Kernel, &gru, &x, reverse, true);
            let b = outcome::<_, 6, 64, f32>(Implementation::Reference, &gru, &x, reverse, true);
            for (a, b) in a
                .values
                .iter()
                .chain(&a.gradients)
                .zip(b.values.iter().chain(&b.gradients))
            {
                crate::assert_close!(a, b, 1e-4);
            }
        }
    }

    /// The kernels split the batch between the threads for the whole sequence (on the CPU):
    /// every split gives the same bits as one thread, whose path the tests above check against
    /// the unrolled cell. CPU builds only: with `cuda` the test device is the GPU, which cannot
    /// move into another thread pool, and the split is the CPU kernel's.
    #[cfg(not(feature = "cuda"))]
    #[test]
    fn kernels_give_the_same_bits_with_any_number_of_threads() {
        let dev = crate::test_device!(9);
        // 37 examples: parts of 20 and 17 on two threads, of 12, 12 and 13 on three, and so on.
        let x = weights::<_, f32>(&dev, (37usize, 4usize, Const::<6>), 5);
        let lstm = LstmCell::<6, 64, f32, Dev>::build(&dev);
        let gru = TorchGruCell::<6, 64, f32, Dev>::build(&dev);
        crate::parallel::assert_same_on_threads(&[2, 3, 4], || {
            let a = outcome::<_, 6, 64, f32>(Implementation::Kernel, &lstm, &x, false, true);
            let b = outcome::<_, 6, 64, f32>(Implementation::Kernel, &gru, &x, true, true);
            [a, b]
                .into_iter()
                .flat_map(|o| o.values.into_iter().chain(o.gradients))
                .collect::<Vec<_>>()
        });
    }

    /// The fused op by finite differences, on a tiny case: the input and every parameter.
    fn check_input_finite_differences<C, const I: usize, const H: usize>()
    where
        C: Cell<I, H, f64>,
        C::State<usize, NoneTape>: Parts<H, f64>,
    {
        let dev = crate::test_device!(5);
        let cell = C::build(&dev);
        let x = weights::<_, f64>(&dev, (2usize, 3usize, Const::<I>), 21);
        for (reverse, collect) in [(false, true), (true, false)] {
            let loss = |x: Taped<(usize, usize, Const<I>), f64>| {
                let run = run::<C, I, H, f64>(Implementation::Kernel, &cell, x, reverse, collect);
                weighted_loss(&dev, run.outputs, run.last.parts(), run.tape)
            };
            check_gradient(&x, loss).assert_below(1e-6);
        }
    }

    #[test]
    fn lstm_kernel_passes_finite_differences() {
        check_input_finite_differences::<LstmCell<3, 2, f64, Dev>, 3, 2>();
        let dev = crate::test_device!(5);
        let cell = LstmCell::<3, 2, f64, Dev>::build(&dev);
        let x = weights::<_, f64>(&dev, (2usize, 3usize, Const::<3>), 21);
        let loss = |cell: &LstmCell<3, 2, f64, Dev>, grads: Gradients<f64, Dev>| {
            let run =
                run::<_, 3, 2, f64>(Implementation::Kernel, cell, x.trace(grads), false, true);
            weighted_loss(&dev, run.outputs, run.last.parts(), run.tape)
        };
        check_parameter_gradient(&cell, |c| &mut c.weight_ih, loss).assert_below(1e-6);
        check_parameter_gradient(&cell, |c| &mut c.weight_hh, loss).assert_below(1e-6);
        check_parameter_gradient(&cell, |c| &mut c.bias_ih, loss).assert_below(1e-6);
        check_parameter_gradient(&cell, |c| &mut c.bias_hh, loss).assert_below(1e-6);
    }

    #[test]
    fn gru_kernel_passes_finite_differences() {
        check_input_finite_differences::<TorchGruCell<3, 2, f64, Dev>, 3, 2>();
        let dev = crate::test_device!(5);
        let cell = TorchGruCell::<3, 2, f64, Dev>::build(&dev);
        let x = weights::<_, f64>(&dev, (2usize, 3usize, Const::<3>), 21);
        let loss = |cell: &TorchGruCell<3, 2, f64, Dev>, grads: Gradients<f64, Dev>| {
            let run = run::<_, 3, 2, f64>(Implementation::Kernel, cell, x.trace(grads), true, true);
            weighted_loss(&dev, run.outputs, run.last.parts(), run.tape)
        };
        check_parameter_gradient(&cell, |c| &mut c.weight_ih, loss).assert_below(1e-6);
        check_parameter_gradient(&cell, |c| &mut c.weight_hh, loss).assert_below(1e-6);
        check_parameter_gradient(&cell, |c| &mut c.bias_ih, loss).assert_below(1e-6);
        check_parameter_gradient(&cell, |c| &mut c.bias_hh, loss).assert_below(1e-6);
    }
}
