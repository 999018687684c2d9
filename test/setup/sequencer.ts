/**
 * Runs the integration files in vitest's usual order, except that files
 * named *.final.test.ts go last: the log scan must see every process's log.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export class FinalLastSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isFinal = (f: TestSpecification) => f.moduleId.endsWith('.final.test.ts');
    return [...sorted.filter((f) => !isFinal(f)), ...sorted.filter(isFinal)];
  }
}
