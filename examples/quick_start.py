"""The README's Python quick start (run by the test suite, so it stays true)."""
import xchan


def square_all(jobs: xchan.Receiver, results: xchan.Sender) -> None:  # runs in its own interpreter
    for n in jobs:
        results.send(n * n)


if __name__ == "__main__":
    jobs_tx, jobs_rx = xchan.channel(capacity=256)
    res_tx, res_rx = xchan.channel()
    workers = [xchan.spawn(square_all, jobs_rx, res_tx) for _ in range(2)]
    jobs_rx.close(); res_tx.close()      # only the workers hold these now
    jobs_tx.send_many(range(1000))
    jobs_tx.close()                      # workers' loops end after draining
    print(sum(res_rx))                   # ends when both workers are done
    for w in workers:
        w.join()
